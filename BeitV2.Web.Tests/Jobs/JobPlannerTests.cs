using System.Text.Json;
using BeitV2.Ml.Data;
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

    [Fact]
    public void SegmentationJob_WithoutTheRecipeKeys_PlansTheReferenceRecipe()
    {
        using var host = new ApiHost();
        var job = Job(JobType.Segmentation, DatasetCatalog.FashionMnistSeg, new { model = "micro", batchSize = 2, maxTrainImages = 4, maxValImages = 0 });
        using var plan = host.Services.GetRequiredService<JobPlanner>().Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null);
        var loader = Assert.IsType<BatchLoaderTrainingData>(plan.TrainData).Loader;
        Assert.Null(loader.Options.EpochSize);
        Assert.Equal(4, loader.Dataset.Count);
        var augmentation = Assert.IsType<SegmentationTrainTransform>(loader.Transform);
        Assert.Equal((0.5, 2.0), (augmentation.MinRatio, augmentation.MaxRatio));
        Assert.Null(Assert.IsType<SegmentationTrainerOptions>(plan.Options).ClassWeights);
        Assert.Equal(4, plan.Owned.OfType<BeitSegmenter>().Single().Config.OutputStride);
    }

    /// <summary>
    /// scaleRange, backgroundWeight, freshScenes and outputStride reach the augmentation, the loss, the loader and the
    /// model: no padding at ratio 1 (64 px scenes, 56 px crops), weights [0.25, 1, …], epoch e on scenes [8e, 8e + 8) of the
    /// whole training split, a 28×28 output; and the plan trains (two steps).
    /// </summary>
    [Fact]
    public void SegmentationJob_RecipeKeys_ReachTheAugmentationTheLossTheLoaderAndTheModel()
    {
        using var host = new ApiHost();
        var job = Job(JobType.Segmentation, DatasetCatalog.FashionMnistSeg, new
        {
            model = "small", imageSize = 56, batchSize = 4, maxTrainImages = 8, maxValImages = 0, maxSteps = 2, workers = 1,
            scaleRange = new[] { 1.0, 1.0 }, backgroundWeight = 0.25, freshScenes = true, outputStride = 2,
        });
        using var plan = host.Services.GetRequiredService<JobPlanner>().Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null);

        var loader = Assert.IsType<BatchLoaderTrainingData>(plan.TrainData).Loader;
        Assert.Equal(8, loader.Options.EpochSize);
        Assert.Equal(60000, loader.Dataset.Count); // the whole training split's scenes, 8 per epoch
        Assert.Equal(2, loader.BatchesPerEpoch);
        Assert.Equal(Enumerable.Range(0, 8), loader.EpochOrder(0).Order());
        Assert.Equal(Enumerable.Range(8, 8), loader.EpochOrder(1).Order());
        var augmentation = Assert.IsType<SegmentationTrainTransform>(loader.Transform);
        Assert.Equal((1.0, 1.0), (augmentation.MinRatio, augmentation.MaxRatio));
        using (var batch = loader.LoadBatch(1, 0))
        {
            Assert.Equal(new long[] { 4, 56, 56 }, batch.Masks!.shape);
            Assert.False(batch.Masks.eq(255).any().item<bool>(), "a 64 px scene at ratio 1 fills the 56 px crop: no ignore padding");
        }

        var options = Assert.IsType<SegmentationTrainerOptions>(plan.Options);
        Assert.Equal(new[] { 0.25 }.Concat(Enumerable.Repeat(1.0, 10)), options.ClassWeights!);

        var segmenter = plan.Owned.OfType<BeitSegmenter>().Single();
        Assert.Equal(2, segmenter.Config.OutputStride);
        using (torch.no_grad())
        using (var images = torch.zeros(2, 3, 56, 56))
        using (var logits = segmenter.forward(images))
            Assert.Equal(new long[] { 2, 11, 28, 28 }, logits.shape);

        var result = plan.Run(new Progress<TrainingProgress>(), CancellationToken.None);
        Assert.Equal(2, result.Step);
    }

    /// <summary>outputStride 2 on a registered stride-4 segmenter: every weight but the necks' comes from it (the upsampling fpn1 starts fresh).</summary>
    [Fact]
    public void SegmentationJob_FromAStride4Segmenter_WithOutputStride2_KeepsAllButTheNecks()
    {
        TrainerBase.SeedEverything(13);
        using var host = new ApiHost();
        var source = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 11) with
        {
            Backbone = SegmentationConfig.Micro().Backbone with { ImgSize = 32, PatchSize = 4 },
        });
        var before = ModelState.Snapshot(source);
        var id = host.Seed(source, "stride-4 segmenter").Id;
        var job = Job(JobType.Segmentation, DatasetCatalog.FashionMnistSeg, new { batchSize = 2, maxTrainImages = 4, maxValImages = 0, outputStride = 2 }, id);
        using var plan = host.Services.GetRequiredService<JobPlanner>().Build(job, Path.Combine(host.DataDirectory, "checkpoints"), null);
        var model = plan.Owned.OfType<BeitSegmenter>().Single(m => m.Config.NumClasses == 11);
        Assert.Equal(2, model.Config.OutputStride);
        Assert.Contains("backbone.fpn1.0.weight", model.state_dict().Keys);
        Assert.DoesNotContain(before.Keys, k => k.StartsWith("backbone.fpn", StringComparison.Ordinal));
        Assert.False(ModelState.AnyDifferent(before, model));
        ModelState.Dispose(before);
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
