using System.Net.Http.Json;
using BeitV2.Web.Pipeline;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Jobs;

[Collection(JobsCollection.Name)]
public sealed class PipelineJobTests
{
    [Fact]
    public async Task SmokePipeline_RunsEveryStage_AndItsModelsServe()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var id = await Jobs.StartAsync(client, new { type = "pipeline", dataset = "fashion-mnist", config = new { preset = "smoke", seed = 3 } });
        var job = await Jobs.WaitAsync(client, id, TimeSpan.FromSeconds(300), "succeeded");

        var metrics = job.GetProperty("lastMetrics").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        foreach (var key in new[]
                 {
                     "teacher.accuracy", "tokenizer.codebookUsage", "tokenizer.perplexity", "tokenizer.valCodeClassPurity", "tokenizer.valCodeClassPurityShuffled", "pretrain.mimAccuracy", "pretrain.mimAccuracyAggregated",
                     "probe-mim-cls.accuracy", "probe-mim-mean.accuracy", "probe-random-cls.accuracy", "probe-random-mean.accuracy",
                     "probe-pixels.accuracy", "finetune-mim.accuracy", "finetune-scratch.accuracy", "segmentation.mIoU", "segmentation-scratch.mIoU", "classifier.accuracy",
                     "agreement.classifierAccuracy", "agreement.segmenterAccuracy", "agreement.agreement", "agreement.backgroundShare",
                 })
        {
            Assert.True(metrics.TryGetValue(key, out var v), $"no {key} in {string.Join(", ", metrics.Keys)}");
            Assert.InRange(v, 0, key.EndsWith("perplexity") ? 1e6 : 1);
        }

        // The classifier is the job's output; the teacher, tokenizer, MIM model, random backbone and segmenter are registered with their lineage.
        var classifier = job.Str("outputModel");
        Assert.Equal(classifier, (await client.PostAsync($"/api/v1/classify?model={classifier}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
        var models = (await client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray().ToList();
        var fromPipeline = models.Where(m => m.GetProperty("lineage").ValueKind == System.Text.Json.JsonValueKind.Object
                                             && m.GetProperty("lineage").Str("jobId") == id).ToList();
        // The teacher is now a convolutional stand-in (a "teacher", not a ViT classifier).
        Assert.Equal(["backbone", "classifier", "pretrain", "segmenter", "teacher", "tokenizer"], fromPipeline.Select(m => m.Str("kind")).Order());
        var tokenizer = fromPipeline.Single(m => m.Str("kind") == "tokenizer").Str("id");
        Assert.Equal(tokenizer, (await client.PostAsync($"/api/v1/tokens?model={tokenizer}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
        var segmenter = fromPipeline.Single(m => m.Str("kind") == "segmenter").Str("id");
        Assert.Equal(segmenter, (await client.PostAsync($"/api/v1/segment?model={segmenter}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
        Assert.True(File.Exists(Path.Combine(host.DataDirectory, "jobs", id, "pipeline.json")));
        host.AssertNoServerErrors();
    }

    [Fact]
    public void Until_StopsAfterThatStage_AndTheNextRunContinuesWithoutRepeatingIt()
    {
        using var host = new ApiHost();
        var runner = host.Services.GetRequiredService<PipelineRunner>();
        var work = Path.Combine(host.DataDirectory, "pipeline-until");
        var logged = new List<string>();
        var progress = new Progress<BeitV2.Ml.Training.TrainingProgress>(_ => { });

        var first = runner.Run("smoke", 1, work, "until-test", progress, logged.Add, CancellationToken.None, until: "tokenizer");
        Assert.False(first.Cancelled);
        Assert.Equal(["teacher", "tokenizer"], first.State.Stages.Keys.Order());
        Assert.Null(first.Classifier);

        logged.Clear();
        var second = runner.Run("smoke", 1, work, "until-test", progress, logged.Add, CancellationToken.None, until: PipelinePreset.PixelProbeStage);
        Assert.Contains(logged, l => l.Contains("teacher: already done"));
        Assert.Contains(logged, l => l.Contains("tokenizer: already done"));
        Assert.Equal(first.State.Stages["tokenizer"].Model, second.State.Stages["tokenizer"].Model);
        var stages = PipelinePreset.Get("smoke", 1).StageNames;
        Assert.Equal([PipelinePreset.PixelProbeStage, PipelinePreset.AgreementStage], stages.TakeLast(2));
        Assert.Equal(stages.SkipLast(1).Order(), second.State.Stages.Keys.Order());

        // The last stage, computed inline: the served segmenter against the served classifier on 1,000 isolated test items.
        logged.Clear();
        var third = runner.Run("smoke", 1, work, "until-test", progress, logged.Add, CancellationToken.None);
        Assert.Equal(stages.Order(), third.State.Stages.Keys.Order());
        Assert.NotNull(third.Classifier);
        Assert.Contains(logged, l => l.StartsWith($"stage {stages.Count}/{stages.Count} agreement:", StringComparison.Ordinal));
        var agreement = third.State.Stages[PipelinePreset.AgreementStage];
        Assert.Equal(PipelineRunner.AgreementItems, agreement.Steps);
        Assert.Equal(["agreement", "backgroundShare", "classifierAccuracy", "segmenterAccuracy"], agreement.Metrics.Keys.Order());
        foreach (var v in agreement.Metrics.Values)
        {
            Assert.InRange(v, 0, 1);
            Assert.Equal(Math.Round(v * 1000), v * 1000, 6); // a count of the 1,000 items
        }
        var report = PipelineReport.Markdown(third.State);
        var row = report.Split('\n').Single(l => l.StartsWith("| segmenter vs classifier on 1,000 isolated test items |", StringComparison.Ordinal));
        Assert.Contains("| classifier right / segmenter right / agree |", row);
        Assert.Contains(FormattableString.Invariant($"{100 * agreement.Metrics["classifierAccuracy"]:F1} % / {100 * agreement.Metrics["segmenterAccuracy"]:F1} % / {100 * agreement.Metrics["agreement"]:F1} %"), row);
        Assert.EndsWith("| `agreement` |", row.TrimEnd());

        var error = Assert.Throws<ArgumentException>(() => runner.Run("smoke", 1, work, "until-test", progress, logged.Add, CancellationToken.None, until: "nope"));
        Assert.Contains("probe-pixels, agreement", error.Message);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task BadPipelineRequests_AreProblemDetails()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        Task<string> Bad(object request) => client.PostAsJsonAsync("/api/v1/jobs", request).ProblemAsync(400);
        Assert.Contains("fashion-small", await Bad(new { type = "pipeline", config = new { preset = "huge" } }));
        Assert.Contains("no 'baseModel'", await Bad(new { type = "pipeline", baseModel = "x" }));
        Assert.Contains("Unknown config key", await Bad(new { type = "pipeline", config = new { epochs = 3 } }));
        Assert.Contains("fashion-mnist", await Bad(new { type = "pipeline", dataset = "other" }));
        Assert.Empty((await client.GetAsync("/api/v1/jobs").JsonAsync()).EnumerateArray());
    }
}
