using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

[Collection(JobsCollection.Name)]
public sealed class JobsApiTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    private static object Tiny(int images = 64, int epochs = 1, int batch = 16) =>
        new { epochs, batchSize = batch, maxTrainImages = images, maxValImages = 32, workers = 2 };

    [Fact]
    public async Task EveryJobType_RunsToSuccess_AndItsModelAnswersItsEndpoint()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var backbone = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)), "teacher backbone");

        // Tokenizer, taught by the default backbone.
        var tok = await Jobs.StartAsync(client, new { type = "tokenizer", dataset = "fashion-mnist",
            config = new { epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32, workers = 2, reportEverySteps = 1 } });
        var tokJob = await Jobs.WaitAsync(client, tok, Timeout, "succeeded");
        var tokenizer = tokJob.Str("outputModel");
        Assert.Matches("^tokenizer-fashion-[0-9a-f]{6}$", tokenizer);   // short, readable ids: kind, dataset, hash
        Assert.True(tokJob.Step() > 0);
        Assert.NotEmpty(tokJob.Items("checkpoints"));
        Assert.Contains("codebookUsage", tokJob.GetProperty("lastMetrics").EnumerateObject().Select(p => p.Name));
        // Epochs are counted from 1: the 1-epoch job ends in epoch 1, its checkpoints and metrics say so too.
        Assert.Equal(1, tokJob.GetProperty("progress").Int("epoch"));
        Assert.All(tokJob.Items("checkpoints"), c => Assert.Equal(1, c.Int("epoch")));
        var series = (await client.GetAsync($"/api/v1/jobs/{tok}/metrics").JsonAsync()).EnumerateArray().ToList();
        Assert.All(series, e => Assert.Equal(1, e.Int("epoch")));
        // Codebook usage and perplexity at every step report, so their charts are lines.
        var stepEntries = series.Where(e => e.Str("event") == "step").ToList();
        Assert.NotEmpty(stepEntries);
        Assert.All(stepEntries, e => Assert.True(e.GetProperty("metrics").TryGetProperty("codebookUsage", out _) && e.GetProperty("metrics").TryGetProperty("perplexity", out _)));
        // The live codebook view's data: the last epoch's per-code counts (64 codes by default), and the kept log.
        var codebook = await client.GetAsync($"/api/v1/jobs/{tok}/codebook").JsonAsync();
        Assert.Equal(64, codebook.Int("codebookSize"));
        var counts = codebook.Items("counts").Select(c => c.GetInt64()).ToList();
        Assert.Equal(64, counts.Count);
        Assert.Equal(counts.Count(c => c > 0), codebook.Int("usedCodes"));
        Assert.Equal(tokJob.GetProperty("lastMetrics").GetProperty("usedCodes").GetDouble(), codebook.Int("usedCodes"));
        Assert.Equal(tokJob.Step(), codebook.GetProperty("step").GetInt64());
        Assert.Equal(1, codebook.Int("epoch"));
        var log = await client.GetAsync($"/api/v1/jobs/{tok}/log").JsonAsync();
        Assert.Contains(log.Items("lines"), l => l.GetString()!.Contains("finished"));
        Assert.Equal(2, (await client.GetAsync($"/api/v1/jobs/{tok}/log?tail=2").JsonAsync()).Items("lines").Length);
        var tokens = await client.PostAsync($"/api/v1/tokens?model={tokenizer}", Http.Images(TestImages.Png(40, 30))).JsonAsync();
        Assert.Equal(tokenizer, tokens.Str("model"));
        var model = await client.GetAsync($"/api/v1/models/{tokenizer}").JsonAsync();
        Assert.Equal(tok, model.GetProperty("lineage").Str("jobId"));

        // MIM pretraining on the new tokenizer.
        var pre = await Jobs.StartAsync(client, new { type = "pretrain", dataset = "fashion-mnist", teacher = tokenizer, config = Tiny() });
        var mim = (await Jobs.WaitAsync(client, pre, Timeout, "succeeded")).Str("outputModel");
        Assert.Equal(mim, (await client.PostAsync($"/api/v1/embeddings?model={mim}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));

        // Linear probe of the seeded backbone.
        var probe = await Jobs.StartAsync(client, new { type = "linear-probe", dataset = "fashion-mnist", baseModel = backbone.Id, config = Tiny() });
        var probed = (await Jobs.WaitAsync(client, probe, Timeout, "succeeded")).Str("outputModel");
        Assert.Matches("^classifier-fashion-[0-9a-f]{6}$", probed);
        var classified = await client.PostAsync($"/api/v1/classify?model={probed}", Http.Images(TestImages.Png(40, 30))).JsonAsync();
        Assert.Equal(probed, classified.Str("model"));

        // Fine-tuning from the MIM model.
        var ft = await Jobs.StartAsync(client, new { type = "finetune", dataset = "fashion-mnist", baseModel = mim, config = Tiny() });
        var ftJob = await Jobs.WaitAsync(client, ft, Timeout, "succeeded");
        var tuned = ftJob.Str("outputModel");
        Assert.Contains("accuracy", ftJob.GetProperty("lastMetrics").EnumerateObject().Select(p => p.Name));
        Assert.Equal(tuned, (await client.PostAsync($"/api/v1/classify?model={tuned}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
        var labels = await client.GetAsync($"/api/v1/models/{tuned}/labels").JsonAsync();
        Assert.Equal("T-shirt/top", labels[0].GetString());

        // Segmentation on the composed scenes, from scratch.
        var seg = await Jobs.StartAsync(client, new { type = "segmentation", dataset = "fashion-mnist-seg", config = Tiny(32, batch: 8) });
        var segJob = await Jobs.WaitAsync(client, seg, Timeout, "succeeded");
        var segmenter = segJob.Str("outputModel");
        Assert.Contains("mIoU", segJob.GetProperty("lastMetrics").EnumerateObject().Select(p => p.Name));
        Assert.Equal(segmenter, (await client.PostAsync($"/api/v1/segment?model={segmenter}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));

        await client.GetAsync($"/api/v1/jobs/{ft}/codebook").ProblemAsync(404);
        await client.GetAsync($"/api/v1/jobs/{ft}/log?tail=0").ProblemAsync(400);
        var metrics = await client.GetAsync($"/api/v1/jobs/{ft}/metrics").JsonAsync();
        Assert.NotEmpty(metrics.EnumerateArray());
        Assert.All(metrics.EnumerateArray(), m => Assert.True(m.GetProperty("step").GetInt64() > 0));
        var all = await client.GetAsync("/api/v1/jobs").JsonAsync();
        Assert.Equal(5, all.GetArrayLength());
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task BadRequests_AreProblemDetails()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var tokenizer = host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "tok");

        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "dance", dataset = "fashion-mnist" }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune" }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "no-such-set" }).ProblemAsync(404);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", baseModel = "nope" }).ProblemAsync(404);
        var kind = await client.PostAsJsonAsync("/api/v1/jobs", new { type = "linear-probe", dataset = "fashion-mnist", baseModel = tokenizer.Id }).ProblemAsync(400);
        Assert.Contains("tokenizer", kind);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "linear-probe", dataset = "fashion-mnist" }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "segmentation", dataset = "fashion-mnist" }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", config = new { epochs = 0 } }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", config = new { lr = -1 } }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", config = new { epoch = 2 } }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", config = new { model = "huge" } }).ProblemAsync(400);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", teacher = tokenizer.Id }).ProblemAsync(400);
        await client.PostAsync("/api/v1/jobs", new StringContent("{not json", System.Text.Encoding.UTF8, "application/json")).ProblemAsync(400);
        await client.GetAsync("/api/v1/jobs/job-missing").ProblemAsync(404);
        await client.PostAsync("/api/v1/jobs/job-missing/cancel", null).ProblemAsync(404);
        Assert.Equal(0, (await client.GetAsync("/api/v1/jobs").JsonAsync()).GetArrayLength());
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Datasets_ListBuiltIns_AcceptZipUploads_RejectBadOnes()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var list = await client.GetAsync("/api/v1/datasets").JsonAsync();
        var ids = list.EnumerateArray().Select(d => d.Str("id")).ToList();
        Assert.Contains("fashion-mnist", ids);
        Assert.Contains("fashion-mnist-seg", ids);
        var fm = list.EnumerateArray().First(d => d.Str("id") == "fashion-mnist");
        Assert.Equal("classification", fm.Str("kind"));
        Assert.Equal(60000, fm.Int("images"));
        Assert.Equal(10, fm.Int("classes"));

        var zip = new MemoryStream();
        using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var cls in new[] { "cats", "dogs" })
                for (var i = 0; i < 6; i++)
                {
                    using var entry = archive.CreateEntry($"{cls}/{i}.png").Open();
                    entry.Write(TestImages.Png(20, 20, seed: i + (cls == "cats" ? 0 : 100)));
                }
        var form = new MultipartFormDataContent { { Http.Part(zip.ToArray(), "application/zip"), "file", "pets.zip" } };
        var created = await client.PostAsync("/api/v1/datasets", form).JsonAsync(HttpStatusCode.Created);
        Assert.Equal("classification", created.Str("kind"));
        Assert.Equal(12, created.Int("images"));
        Assert.Contains(created.Str("id"), (await client.GetAsync("/api/v1/datasets").JsonAsync()).EnumerateArray().Select(d => d.Str("id")));

        // An uploaded set trains too.
        var job = await Jobs.StartAsync(client, new { type = "finetune", dataset = created.Str("id"), config = new { batchSize = 4, epochs = 1 } });
        await Jobs.WaitAsync(client, job, TimeSpan.FromSeconds(60), "succeeded");

        var notZip = new MultipartFormDataContent { { Http.Part("hello"u8.ToArray(), "application/zip"), "file", "x.zip" } };
        using (var r = await client.PostAsync("/api/v1/datasets", notZip))
            Assert.Contains((int)r.StatusCode, new[] { 400, 422 });
        await client.PostAsync("/api/v1/datasets", new StringContent("x")).ProblemAsync(415);
        host.AssertNoServerErrors();
    }
}
