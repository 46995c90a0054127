using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;
using TorchSharp;

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

    /// <summary>
    /// Plans a <paramref name="type"/> job on <paramref name="dataset"/> from <paramref name="source"/> (registered, then disposed)
    /// and checks that the model it builds has <paramref name="classes"/> classes and every weight of the source outside <paramref name="head"/>.
    /// </summary>
    private static void AssertStartsFrom<TModel>(torch.nn.Module source, JobType type, string dataset, int classes, Func<TModel, int> classesOf,
        Func<string, bool> head) where TModel : torch.nn.Module
    {
        using var host = new ApiHost();
        var before = ModelState.Snapshot(source);
        var id = host.Seed(source, $"{type.Name()} source").Id;
        var job = Job(type, dataset, new { batchSize = 2, maxTrainImages = 4, maxValImages = 0 }, baseModel: id);
        using var plan = host.Services.GetRequiredService<JobPlanner>().Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null);
        var model = plan.Owned.OfType<TModel>().Single(m => classesOf(m) == classes);
        Assert.False(ModelState.AnyDifferent(before, model, k => !head(k)));
        ModelState.Dispose(before);
    }

    [Fact]
    public void SegmentationJob_FromASegmenterOfOtherClasses_StartsFromItsWeights_WithFreshClassifiers()
    {
        TrainerBase.SeedEverything(11);
        // 11 classes: background + the 10 Fashion-MNIST ones. Planning this threw before (decode_head.conv_seg missing).
        AssertStartsFrom<BeitSegmenter>(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4)), JobType.Segmentation,
            DatasetCatalog.FashionMnistSeg, 11, m => m.Config.NumClasses, k => k.Contains(".conv_seg.", StringComparison.Ordinal));
    }

    [Fact]
    public void FineTuneJob_FromAClassifierOfOtherClasses_ReplacesTheHead()
    {
        TrainerBase.SeedEverything(12);
        AssertStartsFrom<BeitVisionTransformer>(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), JobType.FineTune,
            DatasetCatalog.FashionMnist, 10, m => m.Config.NumClasses, k => k.StartsWith("head.", StringComparison.Ordinal));
    }
}
