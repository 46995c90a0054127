using BeitV2.Ml.Devices;
using BeitV2.Ml.Models;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Training;
using BeitV2.Ml.Tests.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Precision;

/// <summary>
/// The trainers with <see cref="TrainerOptions.MixedPrecision"/> on the CPU (libtorch has bf16 and
/// fp16 kernels there): they learn, fp16 scales the loss and skips steps whose gradients overflow
/// (provoked with an oversized initial scale), the scale is checkpointed and resumed, and a device
/// gate is taken for every step and evaluation batch but never while a batch is being loaded.
/// </summary>
[Collection(TrainingCollection.Name)]
public class MixedPrecisionTrainingTests
{
    private const int Batch = 8;

    private static SyntheticData Train(int batches = 4) => new(batches, 1, (g, _) => SyntheticData.Stripes(g, Batch, 32));
    private static SyntheticData Validation() => new(2, 99, (g, _) => SyntheticData.Stripes(g, Batch, 32)) { SameEveryEpoch = true };

    private static BeitVisionTransformer NewModel()
    {
        TrainerBase.SeedEverything(5);
        return new BeitVisionTransformer(VitConfig.Micro(numClasses: 2));
    }

    private static FineTuneOptions Options(ComputePrecision precision) => new()
    {
        Epochs = 6, LearningRate = 5e-3, MinLearningRate = 1e-5, WarmupSteps = 2, LayerDecay = 0.75, Seed = 3, ReportEverySteps = 2,
        MixedPrecision = precision,
    };

    [Theory]
    [InlineData(ComputePrecision.Bf16)]
    [InlineData(ComputePrecision.Fp16)]
    public void FineTuning_Learns(ComputePrecision precision)
    {
        using var model = NewModel();
        var progress = new RecordingProgress();
        var result = new FineTuneTrainer(model, Options(precision)).Run(Train(), Validation(), progress);
        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(result.Metrics["accuracy"] >= 0.9, $"{precision}: held-out accuracy {result.Metrics["accuracy"]}");
        Assert.All(model.parameters(), p => Assert.True(p.dtype == ScalarType.Float32, "master weights stay float32"));
        Assert.Contains(progress.Log, l => l.Contains($"mixed precision {precision.Name()}"));
        if (precision == ComputePrecision.Fp16)
        {
            Assert.Equal(65536, result.Metrics["lossScale"]);
            Assert.Equal(0, result.Metrics["skippedStepRate"]);
        }
        else
        {
            Assert.DoesNotContain("lossScale", result.Metrics.Keys);
        }
    }

    /// <summary>A scale of 2^40 overflows float16 in the backward pass: the step is skipped (weights untouched) and the scale halves.</summary>
    [Fact]
    public void Fp16_OverflowingGradients_SkipTheStepAndBackOff()
    {
        using var model = NewModel();
        using var before = new DisposableSnapshot(model);
        var progress = new RecordingProgress();
        var options = Options(ComputePrecision.Fp16) with { InitialLossScale = Math.Pow(2, 40), MaxSteps = 1, ReportEverySteps = 1 };
        var result = new FineTuneTrainer(model, options).Run(Train(), null, progress);
        Assert.Equal(1, result.Step);
        ModelState.AssertIdentical(before.Values, model);
        Assert.Contains(progress.Log, l => l.Contains("step 0: non-finite fp16 gradients at loss scale 1099511627776; step skipped"));
        var last = progress.Reports.Last(r => r.Event == TrainingEvent.Step);
        Assert.Equal(1, last.Metrics["skippedStepRate"]);
    }

    /// <summary>From 2^24 the scale backs off step by step until float16 holds the gradients, then training proceeds and learns.</summary>
    [Fact]
    public void Fp16_RecoversFromATooLargeScale()
    {
        using var model = NewModel();
        var progress = new RecordingProgress();
        var options = Options(ComputePrecision.Fp16) with { InitialLossScale = Math.Pow(2, 24), Epochs = 8 };
        var result = new FineTuneTrainer(model, options).Run(Train(), Validation(), progress);
        var skipped = progress.Log.Count(l => l.Contains("step skipped"));
        Assert.InRange(skipped, 1, 20);
        Assert.True(result.Metrics["accuracy"] >= 0.9, $"held-out accuracy {result.Metrics["accuracy"]} after {skipped} skipped steps");
    }

    [Fact]
    public void Fp16_EndlessOverflow_StopsAsDiverged()
    {
        using var model = NewModel();
        var options = Options(ComputePrecision.Fp16) with { InitialLossScale = 1e300, MaxConsecutiveSkippedSteps = 3 };
        var e = Assert.Throws<TrainingDivergedException>(() => new FineTuneTrainer(model, options).Run(Train(), null));
        Assert.Equal(2, e.Step);
        Assert.Contains("3 fp16 steps in a row", e.Message);
    }

    [Fact]
    public void Fp16_LossScale_IsCheckpointedAndResumed()
    {
        using var dir = new TempDirectory();
        using var model = NewModel();
        var options = Options(ComputePrecision.Fp16) with
        {
            InitialLossScale = 1024, LossScaleGrowthInterval = 2, MaxSteps = 3, CheckpointDirectory = dir.Path, Epochs = 2,
        };
        var part1 = new FineTuneTrainer(model, options).Run(Train(), null);
        var state = TrainingCheckpoint.ReadState(part1.CheckpointPath!);
        Assert.Equal("fp16", state.Precision);
        Assert.Equal(2048, state.LossScale);          // grew once after two finite steps
        Assert.Equal(1, state.LossScaleGrowthTracker);

        using var resumed = NewModel();
        var progress = new RecordingProgress();
        var part2 = new FineTuneTrainer(resumed, options with { MaxSteps = 4, ResumeFrom = part1.CheckpointPath, ReportEverySteps = 1 })
            .Run(Train(), null, progress);
        Assert.Contains(progress.Log, l => l.Contains("mixed precision fp16 (loss scale 2048)"));
        // The resumed step completed the growth interval the first run had begun: 2048 → 4096
        // (a fresh scaler would still be at 1024).
        Assert.Equal(4096, TrainingCheckpoint.ReadState(part2.CheckpointPath!).LossScale);
    }

    [Fact]
    public void Gate_IsHeldForEveryStepAndEvaluationBatch_NotWhileLoading()
    {
        var gate = new DeviceGate("test", enabled: true);
        using var model = NewModel();
        var loadsWhileHeld = 0;
        ITrainingData Watch(SyntheticData data) => new WatchingData(data, () => { if (gate.Queued != 0) loadsWhileHeld++; });
        var options = Options(ComputePrecision.Fp32) with { Epochs = 2, Gate = gate };
        var result = new FineTuneTrainer(model, options).Run(Watch(Train()), Watch(Validation()));
        Assert.Equal(8, result.Step);
        Assert.Equal(8 + 2 * 2, gate.Statistics.Entries);   // 8 steps + 2 evaluations × 2 batches
        Assert.Equal(0, loadsWhileHeld);
        Assert.Equal(0, gate.Queued);
    }

    private sealed class WatchingData(ITrainingData inner, Action onLoad) : ITrainingData
    {
        public int BatchesPerEpoch => inner.BatchesPerEpoch;

        public IEnumerable<TrainingBatch> GetBatches(int epoch, int skip = 0)
        {
            foreach (var b in inner.GetBatches(epoch, skip))
            {
                onLoad();
                yield return b;
            }
        }
    }

    private sealed class DisposableSnapshot(nn.Module module) : IDisposable
    {
        public Dictionary<string, Tensor> Values { get; } = ModelState.Snapshot(module);
        public void Dispose() => ModelState.Dispose(Values);
    }
}
