using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Training;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The models the planner builds for a job (the trainer's factories on a preset or a registered base model), without training.</summary>
[Collection(JobsCollection.Name)]
public sealed class JobPlannerTests
{
    private static JobRecord Job(JobType type, string dataset, object config, string? baseModel = null) => new()
    {
        Id = $"plan-{type.Name()}", Type = type, Dataset = dataset, BaseModel = baseModel,
        Config = JsonSerializer.SerializeToElement(config), Status = JobStatus.Running, CreatedAt = DateTimeOffset.UtcNow,
    };

    [Fact]
    public void SegmentationJob_OnThe12BlockTinyPreset_FeedsTheNecksAsTheReference()
    {
        using var host = new ApiHost();
        var planner = host.Services.GetRequiredService<JobPlanner>();
        var job = Job(JobType.Segmentation, DatasetCatalog.FashionMnistSeg, new { model = "tiny", imageSize = 32, batchSize = 2, maxTrainImages = 4, maxValImages = 0 });
        using var plan = planner.Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null);
        var segmenter = plan.Owned.OfType<BeitSegmenter>().Single();
        Assert.Equal(12, segmenter.Config.Backbone.Depth);
        Assert.Equal(new[] { 3, 5, 7, 11 }, segmenter.Config.OutIndices); // was [2, 5, 8, 11]
    }

    [Fact]
    public void SegmentationJob_FromASegmenterOfOtherClasses_StartsFromItsWeights_WithFreshClassifiers()
    {
        using var host = new ApiHost();
        TrainerBase.SeedEverything(11);
        var source = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4));
        var before = ModelState.Snapshot(source);
        var id = host.Seed(source, "four-class segmenter").Id;
        var planner = host.Services.GetRequiredService<JobPlanner>();
        var job = Job(JobType.Segmentation, DatasetCatalog.FashionMnistSeg, new { batchSize = 2, maxTrainImages = 4, maxValImages = 0 }, baseModel: id);

        using var plan = planner.Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null); // threw: decode_head.conv_seg missing
        var segmenter = plan.Owned.OfType<BeitSegmenter>().Single(s => s.Config.NumClasses != 4);
        Assert.Equal(11, segmenter.Config.NumClasses); // background + the 10 Fashion-MNIST classes
        Assert.False(ModelState.AnyDifferent(before, segmenter, k => !k.Contains(".conv_seg.", StringComparison.Ordinal)));
        ModelState.Dispose(before);
    }

    [Fact]
    public void FineTuneJob_FromAClassifierOfOtherClasses_ReplacesTheHead()
    {
        using var host = new ApiHost();
        TrainerBase.SeedEverything(12);
        var source = new BeitVisionTransformer(VitConfig.Micro(numClasses: 3));
        var before = ModelState.Snapshot(source);
        var id = host.Seed(source, "three-class classifier").Id;
        var planner = host.Services.GetRequiredService<JobPlanner>();
        var job = Job(JobType.FineTune, DatasetCatalog.FashionMnist, new { batchSize = 2, maxTrainImages = 4, maxValImages = 0 }, baseModel: id);

        using var plan = planner.Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null);
        var classifier = plan.Owned.OfType<BeitVisionTransformer>().Single(m => m.Config.NumClasses != 3);
        Assert.Equal(10, classifier.Config.NumClasses);
        Assert.False(ModelState.AnyDifferent(before, classifier, k => !k.StartsWith("head.", StringComparison.Ordinal)));
        ModelState.Dispose(before);
    }
}
