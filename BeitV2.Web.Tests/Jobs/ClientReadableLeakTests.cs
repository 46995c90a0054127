using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using BeitV2.Ml.Models;
using BeitV2.Web.Tests.Api;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>
/// Drives failures (a job that fails at run time, a bad checkpoint import, bad images, a malformed
/// multipart body) and scans everything a client can then read (job records and list, job log, problem
/// details, /api/v1/info, models, datasets) for the data directory's absolute path, the host name, the
/// process id and .NET exception type names.
/// </summary>
[Collection(JobsCollection.Name)]
public sealed class ClientReadableLeakTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;
    private static readonly Regex ExceptionName = new(@"\b(System|Microsoft|TorchSharp|BeitV2)\.[A-Za-z.]+Exception\b");

    [Fact]
    public async Task AfterFailures_NothingClientReadable_CarriesPathsHostPidOrExceptionTypes()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var vit = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0));
        using (no_grad()) vit.get_parameter("patch_embed.proj.weight")!.index_put_(float.NaN, 0, 0, 0, 0);
        var broken = host.Seed(vit, "corrupt backbone");
        var seen = new List<(string What, string Text)>();
        async Task Read(string what, Task<HttpResponseMessage> request)
        {
            using var response = await request;
            seen.Add(($"{what} ({(int)response.StatusCode})", await response.Content.ReadAsStringAsync()));
        }

        // A job that fails while running.
        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist", baseModel = broken.Id,
            config = new { batchSize = 8, maxTrainImages = 32, maxValImages = 8 },
        });
        await Jobs.WaitAsync(client, id, Timeout, "failed");
        await Read("job", client.GetAsync($"/api/v1/jobs/{id}"));
        await Read("jobs", client.GetAsync("/api/v1/jobs"));
        await Read("job log", client.GetAsync($"/api/v1/jobs/{id}/log"));
        await Read("job metrics", client.GetAsync($"/api/v1/jobs/{id}/metrics"));
        // A job the server cannot start (unknown dataset, bad config).
        await Read("bad job", client.PostAsync("/api/v1/jobs", Json("""{"type":"finetune","dataset":"../../etc","config":{"batchSize":-1}}""")));
        // Bad imports: garbage named .pth and .safetensors, a wrong kind.
        foreach (var (file, kind) in new[] { ("x.pth", "classifier"), ("x.safetensors", "tokenizer"), ("x.bin", "nonsense") })
        {
            var form = new MultipartFormDataContent { { new ByteArrayContent(Encoding.ASCII.GetBytes("PK\u0003\u0004 not really a checkpoint")), "file", file }, { new StringContent(kind), "kind" } };
            await Read("import " + file, client.PostAsync("/api/v1/models/import", form));
        }
        // A bad dataset zip.
        await Read("dataset", client.PostAsync("/api/v1/datasets", new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "file", "d.zip" } }));
        // Bad images and a malformed multipart body.
        await Read("classify text", client.PostAsync($"/api/v1/embeddings?model={broken.Id}", Http.Raw(Encoding.ASCII.GetBytes("not an image"), "image/png")));
        await Read("classify truncated", client.PostAsync($"/api/v1/embeddings?model={broken.Id}", Http.Raw(TestImages.Png(40, 30)[..50], "image/png")));
        var malformed = new ByteArrayContent(Encoding.ASCII.GetBytes("--x\r\ngarbage"));
        malformed.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=y");
        await Read("malformed", client.PostAsync("/api/v1/classify", malformed));
        // What any client can list.
        await Read("info", client.GetAsync("/api/v1/info"));
        await Read("models", client.GetAsync("/api/v1/models"));
        await Read("datasets", client.GetAsync("/api/v1/datasets"));
        await Read("ready", client.GetAsync("/health/ready"));

        var pid = Environment.ProcessId.ToString();
        var problems = new List<string>();
        foreach (var (what, text) in seen)
        {
            if (text.Contains(host.DataDirectory, StringComparison.Ordinal)) problems.Add($"{what}: the data directory's absolute path");
            if (Environment.MachineName.Length >= 4 && text.Contains(Environment.MachineName, StringComparison.OrdinalIgnoreCase)) problems.Add($"{what}: the host name");
            if (text.Contains($":{pid}:", StringComparison.Ordinal) || text.Contains($"pid {pid}", StringComparison.Ordinal)) problems.Add($"{what}: the process id");
            if (ExceptionName.Match(text) is { Success: true } m) problems.Add($"{what}: {m.Value}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems) + "\n\n" + string.Join("\n", seen.Select(s => $"{s.What}: {s.Text}")));
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
