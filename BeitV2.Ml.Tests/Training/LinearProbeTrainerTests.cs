using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class LinearProbeTrainerTests
{
    private const int Batch = 8;

    private static SyntheticData Train(int batches = 4) => new(batches, 7, (g, _) => SyntheticData.Stripes(g, Batch, 32));
    private static SyntheticData Validation() => new(2, 70, (g, _) => SyntheticData.Stripes(g, Batch, 32)) { SameEveryEpoch = true };

    private static BeitVisionTransformer Vit(bool meanPooling = true)
    {
        TrainerBase.SeedEverything(12);
        return new BeitVisionTransformer(VitConfig.Micro(numClasses: 0) with { UseMeanPooling = meanPooling });
    }

    private static LinearProbeOptions Options(ProbeFeature feature = ProbeFeature.Mean, int? layer = null) => new()
    {
        NumClasses = 2, Feature = feature, Layer = layer, Epochs = 6, LearningRate = 1e-2, Seed = 1, ReportEverySteps = 4,
    };

    /// <summary>The delivered classifier computes exactly what the trained probe computes (BatchNorm folded in).</summary>
    private static void AssertSameLogits(nn.Module delivered, LinearProbeTrainer trainer)
    {
        using var g = new Generator(123);
        using var batch = SyntheticData.Stripes(g, 4, 32);
        using var _ = no_grad();
        trainer.Probe.eval();
        using var features = trainer.ExtractFeatures(batch.Images);
        using var expected = trainer.Probe.forward(features);
        delivered.eval();
        using var actual = ((nn.Module<Tensor, Tensor>)delivered).forward(batch.Images);
        Assert.True(expected.allclose(actual, rtol: 1e-4, atol: 1e-5), "the delivered classifier differs from the probe");
    }

    [Fact]
    public void MeanFeatureOfAMeanPoolingVit_DeliversAPlainVitClassifier()
    {
        using var backbone = Vit();
        var before = ModelState.Snapshot(backbone);
        var progress = new RecordingProgress();
        var trainer = new LinearProbeTrainer(backbone, Options());
        Assert.True(trainer.DeliversVisionTransformer);
        var result = trainer.Run(Train(), Validation(), progress);

        var vit = Assert.IsType<BeitVisionTransformer>(result.Model);
        Assert.Equal(2, vit.Config.NumClasses);
        AssertSameLogits(vit, trainer);
        ModelState.AssertIdentical(before, backbone); // frozen
        ModelState.Dispose(before);

        var epochs = progress.Reports.Where(r => r.Event == TrainingEvent.EpochEnd).Select(r => r.Metrics).ToList();
        Assert.True(epochs[^1]["loss"] < epochs[0]["loss"], $"probe loss {epochs[0]["loss"]} → {epochs[^1]["loss"]}");
        Assert.True(result.Metrics["accuracy"] > 0.7, $"held-out accuracy {result.Metrics["accuracy"]}");
        Assert.All(progress.Reports, r => Assert.Equal("probe", r.Stage));

        // The delivered model is an ordinary package.
        using var dir = new TempDirectory();
        ModelPackage.Save(vit, dir.Combine("probe"));
        using var loaded = ModelPackage.Load(dir.Combine("probe"));
        AssertSameLogits(loaded.Module, trainer);
        vit.Dispose();
    }

    [Fact]
    public void ClsOfAMimModel_DeliversAClsPoolingVit()
    {
        TrainerBase.SeedEverything(13);
        using var mim = new BeitMim(MimConfig.Micro());
        var trainer = new LinearProbeTrainer(mim, Options(ProbeFeature.Cls) with { Epochs = 1 });
        var result = trainer.Run(Train(2));
        var vit = Assert.IsType<BeitVisionTransformer>(result.Model);
        Assert.False(vit.Config.UseMeanPooling);
        Assert.True(vit.Config.UseSharedRelPosBias);
        AssertSameLogits(vit, trainer);
        vit.Dispose();
    }

    [Fact]
    public void IntermediateLayer_DeliversAWrapper()
    {
        using var backbone = Vit(meanPooling: false);
        var trainer = new LinearProbeTrainer(backbone, Options(ProbeFeature.Mean, layer: 0) with { Epochs = 1, BatchNorm = false });
        Assert.False(trainer.DeliversVisionTransformer);
        var result = trainer.Run(Train(2));
        var wrapper = Assert.IsType<LinearProbeClassifier>(result.Model);
        Assert.Equal(0, wrapper.Layer);
        AssertSameLogits(wrapper, trainer);
        Assert.Throws<ArgumentException>(() => new LinearProbeTrainer(backbone, Options(layer: 2)));
    }

    [Fact]
    public void ResumedRun_GivesTheSameProbeAsAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        using var backbone = Vit();
        var options = Options() with { Epochs = 2, CheckpointDirectory = dir.Combine("a") };

        var straight = new LinearProbeTrainer(backbone, options with { MaxSteps = 6 });
        straight.Run(Train());
        var expected = ModelState.Snapshot(straight.Probe); // linear layer and BatchNorm running statistics

        var first = new LinearProbeTrainer(backbone, options with { MaxSteps = 3, CheckpointDirectory = dir.Combine("b") });
        var part1 = first.Run(Train(), Validation());
        var second = new LinearProbeTrainer(backbone, options with { MaxSteps = 6, ResumeFrom = part1.CheckpointPath });
        Assert.Equal(6, second.Run(Train()).Step);
        ModelState.AssertIdentical(expected, second.Probe);
        ModelState.Dispose(expected);
    }
}
