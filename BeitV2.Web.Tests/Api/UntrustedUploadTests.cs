using System.Net;
using BeitV2.Web.Registry;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// Issue 15.1 over HTTP: a TorchScript archive is refused on every route that takes a zip, with the way to
/// convert it; and imports run one at a time (the second gets 429 with Retry-After while the first is held
/// by the import gate's hook, not by racing it).
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class UntrustedUploadTests(ImportApi api) : IClassFixture<ImportApi>
{
    private HttpClient Client => api.Client;

    [Fact]
    public async Task TorchScriptImport_Is415_WithTheConversion_AndLeavesNothing()
    {
        var detail = await Client.PostAsync("/api/v1/models/import", Form(("ViT-B-16.pt", HostileCheckpoints.TorchScript()), "teacher"))
            .ProblemAsync(415);
        Assert.Contains("torch.jit.load('ViT-B-16.pt', map_location='cpu').state_dict()", detail);
        Assert.Contains("safetensors", detail);
        Assert.Empty(api.Host.TempFiles());
        api.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task TorchScriptAsDataset_Is415_WithTheConversion()
    {
        var form = new MultipartFormDataContent { { Http.Part(HostileCheckpoints.TorchScript(), "application/zip"), "file", "model.zip" } };
        var detail = await Client.PostAsync("/api/v1/datasets", form).ProblemAsync(415);
        Assert.Contains("TorchScript", detail);
        Assert.Contains("state_dict()", detail);
        Assert.Empty(api.Host.TempFiles());
        api.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task SecondConcurrentImport_Gets429WithRetryAfter_AndTheFirstCompletes()
    {
        var gate = api.Host.Services.GetRequiredService<ImportGate>();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        gate.WhileHeld = async ct =>
        {
            entered.TrySetResult();
            await release.Task.WaitAsync(ct);
        };
        try
        {
            var first = Client.PostAsync("/api/v1/models/import", Fixture("vit_cls.pth", "classifier"));
            await entered.Task.WaitAsync(TimeSpan.FromMinutes(2)); // a safety net, not a race: the hook is reached or the test fails

            using (var second = await Client.PostAsync("/api/v1/models/import", Fixture("vit_cls.pth", "classifier")))
            {
                Assert.NotNull(second.Headers.RetryAfter);
                var detail = await second.ProblemAsync(429);
                Assert.Contains("one at a time", detail);
            }

            release.SetResult();
            gate.WhileHeld = null;
            await (await first).JsonAsync(HttpStatusCode.Created);
            // The gate was released: the next import goes through.
            await Client.PostAsync("/api/v1/models/import", Fixture("vit_cls.pth", "classifier")).JsonAsync(HttpStatusCode.Created);
        }
        finally
        {
            gate.WhileHeld = null;
            release.TrySetResult();
        }
        Assert.Empty(api.Host.TempFiles());
        api.Host.AssertNoServerErrors();
    }

    private static MultipartFormDataContent Fixture(string fixture, string kind) =>
        Form((fixture, File.ReadAllBytes(Path.Combine(FixturePaths.ReferenceDir, fixture))), kind);

    private static MultipartFormDataContent Form((string Name, byte[] Bytes) file, string kind)
    {
        var form = new MultipartFormDataContent { { new StringContent(kind), "kind" } };
        form.Add(Http.Part(file.Bytes, "application/octet-stream"), "file", file.Name);
        return form;
    }
}
