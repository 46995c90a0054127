using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class FineTuneTrainerTests
{
    private const int Batch = 8;

    private static SyntheticData Train(int batches = 4, int seed = 1) => new(batches, seed, (g, _) => SyntheticData.Stripes(g, Batch, 32));
    private static SyntheticData Validation() => new(2, 99, (g, _) => SyntheticData.Stripes(g, Batch, 32)) { SameEveryEpoch = true };

    private static BeitVisionTransformer NewModel(long seed = 5, double dropPath = 0)
    {
        TrainerBase.SeedEverything(seed);
        return new BeitVisionTransformer(VitConfig.Micro(numClasses: 2) with { DropPathRate = dropPath });
    }

    private static FineTuneOptions Options() => new()
    {
        Epochs = 6, LearningRate = 5e-3, MinLearningRate = 1e-5, WarmupSteps = 2, LayerDecay = 0.75, LabelSmoothing = 0.1, Seed = 3,
        ReportEverySteps = 2,
    };

    [Fact]
    public void LearnsTwoPatterns_ReportsProgressAndAccuracy()
    {
        using var model = NewModel();
        var progress = new RecordingProgress();
        var trainer = new FineTuneTrainer(model, Options());
        var result = trainer.Run(Train(), Validation(), progress);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Equal(24, result.Step);
        Assert.Same(model, result.Model);
        var epochEnds = progress.Reports.Where(r => r.Event == TrainingEvent.EpochEnd).ToList();
        Assert.Equal(6, epochEnds.Count);
        Assert.True(epochEnds[^1].Metrics["loss"] < epochEnds[0].Metrics["loss"] - 0.1,
            $"epoch loss {epochEnds[0].Metrics["loss"]} → {epochEnds[^1].Metrics["loss"]}");
        Assert.True(result.Metrics["accuracy"] >= 0.9, $"held-out accuracy {result.Metrics["accuracy"]}; " + string.Join(" / ", epochEnds.Select(r => $"{r.Metrics["loss"]:F3} {r.Metrics["trainAccuracy"]:F2}")));

        var steps = progress.Reports.Where(r => r.Event == TrainingEvent.Step).ToList();
        Assert.NotEmpty(steps);
        Assert.All(progress.Reports, r =>
        {
            Assert.Equal("finetune", r.Stage);
            Assert.Equal(6, r.Epochs);
            Assert.Equal(24, r.Steps);
            Assert.InRange(r.Epoch, 0, 5);
        });
        Assert.All(steps, r =>
        {
            Assert.True(double.IsFinite(r.Loss));
            Assert.True(r.LearningRate > 0);
            Assert.True(r.ImagesPerSecond > 0);
            Assert.NotNull(r.EtaSeconds);
            Assert.Contains("loss", r.Metrics.Keys);
            Assert.Contains("trainAccuracy", r.Metrics.Keys);
            Assert.NotEmpty(r.Log);
        });
        Assert.Equal(steps.Select(r => r.Step).Order(), steps.Select(r => r.Step));
        Assert.Contains(progress.Reports, r => r.Event == TrainingEvent.Evaluation && r.Metrics.ContainsKey("accuracy"));
        Assert.Equal(TrainingEvent.Finished, progress.Reports[^1].Event);
        Assert.Equal(0.0, progress.Reports[^1].EtaSeconds);
        // The schedule: warmup 2 steps from 0, then cosine from the peak.
        Assert.Equal(Options().LearningRate, progress.Reports.First(r => r.Step == 2).LearningRate, 12);
    }

    [Fact]
    public void ResumedRun_GivesTheSameWeightsAsAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        // Drop path on: the saved generator state has to make the resumed run draw the same numbers.
        var options = Options() with { Epochs = 2, CheckpointDirectory = dir.Combine("a") };

        using var straight = NewModel(dropPath: 0.2);
        var full = new FineTuneTrainer(straight, options with { MaxSteps = 6 }).Run(Train(), null);
        Assert.Equal(TrainingStatus.BudgetReached, full.Status);
        Assert.Equal(6, full.Step);
        var expected = ModelState.Snapshot(straight);

        using var first = NewModel(dropPath: 0.2);
        var part1 = new FineTuneTrainer(first, options with { MaxSteps = 3, CheckpointDirectory = dir.Combine("b") }).Run(Train(), Validation());
        Assert.Equal(TrainingStatus.BudgetReached, part1.Status);
        Assert.Equal(3, part1.Step);
        Assert.NotNull(part1.CheckpointPath);
        Assert.Equal(3, TrainingCheckpoint.ReadState(part1.CheckpointPath!).Step);

        using var second = NewModel(seed: 77, dropPath: 0.2); // other initial weights: everything must come from the checkpoint
        var progress = new RecordingProgress();
        var part2 = new FineTuneTrainer(second, options with { MaxSteps = 6, ResumeFrom = part1.CheckpointPath, ReportEverySteps = 1 })
            .Run(Train(), null, progress);
        Assert.Equal(6, part2.Step);
        Assert.Equal(new long[] { 4, 5, 6 }, progress.Reports.Where(r => r.Event == TrainingEvent.Step).Select(r => r.Step));
        Assert.Contains(progress.Log, l => l.Contains("resumed from"));
        ModelState.AssertIdentical(expected, second);
        ModelState.Dispose(expected);
    }

    [Fact]
    public void Cancellation_SavesACheckpoint_ThatResumesAtTheNextStep()
    {
        using var dir = new TempDirectory();
        using var cts = new CancellationTokenSource();
        using var model = NewModel();
        var progress = new RecordingProgress(r =>
        {
            if (r.Event == TrainingEvent.Step && r.Step == 2) cts.Cancel();
        });
        var options = Options() with { Epochs = 2, ReportEverySteps = 1, CheckpointDirectory = dir.Path, CheckpointEveryEpochs = 0 };
        var result = new FineTuneTrainer(model, options).Run(Train(), Validation(), progress, cts.Token);

        Assert.Equal(TrainingStatus.Cancelled, result.Status);
        Assert.Equal(2, result.Step);
        Assert.NotNull(result.CheckpointPath);
        var state = TrainingCheckpoint.ReadState(result.CheckpointPath!);
        Assert.Equal(2, state.Step);
        Assert.Equal("finetune", state.Stage);
        Assert.DoesNotContain(progress.Reports, r => r.Event == TrainingEvent.Evaluation);
        Assert.Contains(progress.Reports, r => r.Event == TrainingEvent.Checkpoint && r.Step == 2);

        // The checkpoint is also a model package.
        using (var loaded = ModelPackage.Load(result.CheckpointPath!))
            Assert.IsType<BeitVisionTransformer>(loaded.Module);

        using var resumedModel = NewModel(seed: 9);
        var resumed = new RecordingProgress();
        var rest = new FineTuneTrainer(resumedModel, options with { ResumeFrom = result.CheckpointPath }).Run(Train(), null, resumed);
        Assert.Equal(TrainingStatus.Completed, rest.Status);
        Assert.Equal(8, rest.Step);
        Assert.Equal(3, resumed.Reports.First(r => r.Event == TrainingEvent.Step).Step);
    }

    [Fact]
    public void NaNLoss_ThrowsTrainingDiverged_WithStepAndLoss()
    {
        using var model = NewModel();
        var data = new SyntheticData(4, 1, (g, i) =>
        {
            var b = SyntheticData.Stripes(g, Batch, 32);
            if (i == 2) b.Images.fill_(float.NaN);
            return b;
        });
        var e = Assert.Throws<TrainingDivergedException>(() => new FineTuneTrainer(model, Options()).Run(data));
        Assert.Equal(2, e.Step);
        Assert.True(double.IsNaN(e.Loss));
        Assert.Equal("finetune", e.Stage);
        Assert.Contains("step 2", e.Message);
        Assert.Contains("NaN", e.Message);
    }

    [Fact]
    public void LabelSmoothingCrossEntropy_MatchesTimm()
    {
        using var logits = tensor(new float[] { 2f, 0f, -1f, 0.5f, 0.5f, 1f }, new long[] { 2, 3 });
        using var target = tensor(new long[] { 0, 2 });
        using var loss = Losses.LabelSmoothingCrossEntropy(logits, target, 0.1);
        double Expected(double[] z, int y)
        {
            var lse = Math.Log(z.Sum(Math.Exp));
            var logp = z.Select(v => v - lse).ToArray();
            return 0.9 * -logp[y] + 0.1 * -logp.Average();
        }
        var expected = (Expected(new[] { 2.0, 0, -1 }, 0) + Expected(new[] { 0.5, 0.5, 1 }, 2)) / 2;
        Assert.Equal(expected, loss.item<float>(), 5);
    }

    [Fact]
    public void CreateModel_FromAPretrainingCheckpoint_KeepsAFreshHead()
    {
        using var dir = new TempDirectory();
        TrainerBase.SeedEverything(1);
        using var mim = new BeitMim(MimConfig.Micro());
        var path = dir.Combine("mim.safetensors");
        TorchSharp.PyBridge.Safetensors.SaveStateDict(path, mim.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().contiguous()));
        using var model = FineTuneTrainer.CreateModel(mim.Config.ToBackbone(numClasses: 3), FineTuneOptions.BaseFromPt1k300(), path);
        Assert.Equal(0.1, model.Config.DropPathRate);
        using var a = model.state_dict()["blocks.1.mlp.fc1.weight"].detach();
        using var b = mim.state_dict()["blocks.1.mlp.fc1.weight"].detach();
        Assert.True(a.equal(b).all().item<bool>());
    }
}
