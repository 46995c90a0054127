using BeitV2.Ml.Masking;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class PretrainTrainerTests
{
    private const int Batch = 8;

    /// <summary>Model view (normalised) and tokenizer view ([0, 1]) of the same stripes; masks from the data when asked.</summary>
    private static SyntheticData Data(int batches = 4, int seed = 3, bool withMasks = false) => new(batches, seed, (g, i) =>
    {
        var b = SyntheticData.Stripes(g, Batch, 32, unitRange: true);
        Tensor? masks = null;
        if (withMasks)
            masks = new BlockMaskingGenerator(4, 6, minNumPatches: 2, seed: seed * 100 + i).GenerateBatch(Batch);
        return new TrainingBatch
        {
            Images = (b.Images - 0.5) / 0.25, TokenizerImages = b.Images, Labels = b.Labels, MaskedPositions = masks,
        };
    });

    /// <summary>A micro tokenizer whose codebook was initialised by one training forward (k-means).</summary>
    private static VqkdTokenizer Tokenizer()
    {
        TrainerBase.SeedEverything(4);
        var tokenizer = new VqkdTokenizer(VqkdConfig.Micro(decoderOutDim: 32, nEmbed: 64));
        tokenizer.train();
        using (var g = new Generator(8))
        using (var batch = SyntheticData.Stripes(g, 16, 32, unitRange: true))
        using (var targets = randn(new long[] { 16, 16, 32 }, generator: g))
        using (no_grad())
        using (tokenizer.Forward(batch.Images, targets)) { }
        tokenizer.eval();
        return tokenizer;
    }

    private static BeitMim NewModel(long seed = 6)
    {
        TrainerBase.SeedEverything(seed);
        return new BeitMim(MimConfig.Micro(vocabSize: 64) with { DropPathRate = 0.1 });
    }

    private static PretrainTrainerOptions Options() => new()
    {
        Epochs = 5, LearningRate = 3e-3, MinLearningRate = 1e-5, WarmupSteps = 2, Seed = 2, ReportEverySteps = 1,
    };

    [Fact]
    public void LossDecreases_BothAccuraciesReported_TokenizerUntouched()
    {
        using var tokenizer = Tokenizer();
        var tokenizerBefore = ModelState.Snapshot(tokenizer);
        using var model = NewModel();
        var progress = new RecordingProgress();
        var result = new PretrainTrainer(model, tokenizer, Options()).Run(Data(), Data(1, seed: 40, withMasks: true), progress);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        var epochs = progress.Reports.Where(r => r.Event == TrainingEvent.EpochEnd).Select(r => r.Metrics).ToList();
        Assert.True(epochs[^1]["loss"] < epochs[0]["loss"] - 0.2, $"MIM loss {epochs[0]["loss"]} → {epochs[^1]["loss"]}");
        Assert.All(progress.Reports.Where(r => r.Event == TrainingEvent.Step), r =>
        {
            Assert.InRange(r.Metrics["mimAccuracy"], 0, 1);
            Assert.InRange(r.Metrics["mimAccuracyAggregated"], 0, 1);
            Assert.Equal("pretrain", r.Stage);
        });
        Assert.Contains("valMimAccuracy", result.Metrics.Keys);
        Assert.Contains("valMimAccuracyAggregated", result.Metrics.Keys);
        // Frozen, in eval mode, and its usage statistic is not updated while it labels the data.
        ModelState.AssertIdentical(tokenizerBefore, tokenizer);
        Assert.False(tokenizer.training);
        ModelState.Dispose(tokenizerBefore);
    }

    [Fact]
    public void MasksFromTheBatch_AreUsed()
    {
        using var tokenizer = Tokenizer();
        using var model = NewModel();
        var result = new PretrainTrainer(model, tokenizer, Options() with { Epochs = 1 }).Run(Data(2, withMasks: true));
        Assert.Equal(2, result.Step);
    }

    [Fact]
    public void ResumedRun_GivesTheSameWeightsAsAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        using var tokenizer = Tokenizer();
        var options = Options() with { Epochs = 2, CheckpointDirectory = dir.Combine("a") };

        using var straight = NewModel();
        new PretrainTrainer(straight, tokenizer, options with { MaxSteps = 6 }).Run(Data());
        var expected = ModelState.Snapshot(straight);

        using var first = NewModel();
        var part1 = new PretrainTrainer(first, tokenizer, options with { MaxSteps = 3, CheckpointDirectory = dir.Combine("b") }).Run(Data());
        using var second = NewModel(seed: 1);
        var part2 = new PretrainTrainer(second, tokenizer, options with { MaxSteps = 6, ResumeFrom = part1.CheckpointPath }).Run(Data());
        Assert.Equal(6, part2.Step);
        // Drop path is on and the masks are drawn by the trainer: both continue exactly.
        ModelState.AssertIdentical(expected, second);
        ModelState.Dispose(expected);
    }

    [Fact]
    public void VocabularyMismatch_IsRejected()
    {
        using var tokenizer = Tokenizer();
        using var model = new BeitMim(MimConfig.Micro(vocabSize: 32));
        var e = Assert.Throws<ArgumentException>(() => new PretrainTrainer(model, tokenizer, Options()));
        Assert.Contains("vocab_size", e.Message);
    }
}
