using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class TokenizerTrainerTests
{
    private const int Batch = 8;

    private static SyntheticData Images(int batches = 4, int seed = 2) =>
        new(batches, seed, (g, _) => SyntheticData.Stripes(g, Batch, 32, unitRange: true));

    /// <summary>A frozen random micro ViT as teacher: 32-d patch features of the 4×4 grid.</summary>
    private static BackboneTeacher Teacher()
    {
        TrainerBase.SeedEverything(11);
        return new BackboneTeacher(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)));
    }

    private static VqkdTokenizer NewTokenizer(long seed = 4, int codes = 64)
    {
        TrainerBase.SeedEverything(seed);
        return new VqkdTokenizer(VqkdConfig.Micro(decoderOutDim: 32, nEmbed: codes));
    }

    private static TokenizerTrainerOptions Options() => new()
    {
        Epochs = 4, LearningRate = 2e-3, MinLearningRate = 1e-4, WarmupSteps = 1, Seed = 1, ReportEverySteps = 2,
    };

    [Fact]
    public void ReconstructionImproves_CodebookMetricsReported()
    {
        using var teacher = Teacher();
        using var tokenizer = NewTokenizer();
        var progress = new RecordingProgress();
        var result = new TokenizerTrainer(tokenizer, teacher, Options()).Run(Images(), Images(2, seed: 50), progress);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.True(tokenizer.Quantizer.Embedding.Initialised); // k-means ran on the first batch
        var epochs = progress.Reports.Where(r => r.Event == TrainingEvent.EpochEnd).ToList();
        Assert.Equal(4, epochs.Count);
        var first = epochs[0].Metrics;
        var last = epochs[^1].Metrics;
        Assert.True(last["reconstructionCosine"] > first["reconstructionCosine"] + 0.05,
            $"reconstruction cosine {first["reconstructionCosine"]} → {last["reconstructionCosine"]}");
        Assert.True(last["loss"] < first["loss"]);
        foreach (var m in epochs.Select(e => e.Metrics))
        {
            Assert.InRange(m["codebookUsage"], 1.0 / 64, 1.0);
            Assert.InRange(m["perplexity"], 1.0, 64.0);
            Assert.InRange(m["maxCodeShare"], 1.0 / 64, 1.0);
            Assert.Contains("codebookCollapse", m.Keys);
            Assert.Contains("commitLoss", m.Keys);
            // The usage statistic is reset at every epoch start, so its zero entries are exactly the codes unused this epoch.
            Assert.Equal(64 - m["usedCodes"], m["unusedCodes"]);
        }
        // Per-code counts ride along every report (the live codebook view): at an epoch's end they are that epoch's histogram.
        Assert.All(progress.Reports, r => Assert.Equal(64, r.CodeCounts?.Count));
        foreach (var e in epochs)
            Assert.Equal(e.Metrics["usedCodes"], e.CodeCounts!.Count(c => c > 0));
        var steps = progress.Reports.Where(r => r.Event == TrainingEvent.Step).ToList();
        Assert.All(steps, r => Assert.True(r.CodeCounts!.Sum() > 0));
        // Usage and perplexity ride along every step report too (the job page charts them as lines, not one dot per
        // epoch): those of the epoch so far, i.e. of the counts sent with the same report.
        Assert.All(steps, r =>
        {
            Assert.Equal(r.CodeCounts!.Count(c => c > 0) / 64.0, r.Metrics["codebookUsage"], 12);
            Assert.Equal(r.CodeCounts!.Count(c => c > 0), r.Metrics["usedCodes"]);
            Assert.InRange(r.Metrics["perplexity"], 1.0, 64.0);
        });
        var eval = progress.Reports.Last(r => r.Event == TrainingEvent.Evaluation).Metrics;
        Assert.InRange(eval["valReconstructionCosine"], -1.0, 1.0);
        Assert.Contains("valUnusedCodes", eval.Keys);
        Assert.All(progress.Reports.Where(r => r.Event == TrainingEvent.Step), r => Assert.Contains("reconstructionCosine", r.Metrics.Keys));
        Assert.All(progress.Reports, r => Assert.Equal("tokenizer", r.Stage));
    }

    [Fact]
    public void UniformImages_CollapseTheCodebook_WarningAndFlag()
    {
        using var teacher = Teacher();
        // Identical images: only the 16 positions differ, so each of the 2 steps can use at most 16 of the 512 codes.
        using var tokenizer = NewTokenizer(codes: 512);
        var gray = new SyntheticData(2, 3, (g, _) => new TrainingBatch { Images = full(Batch, 3, 32, 32, 0.5f) });
        var progress = new RecordingProgress();
        var result = new TokenizerTrainer(tokenizer, teacher, Options() with { Epochs = 1 }).Run(gray, null, progress);
        var metrics = progress.Reports.Single(r => r.Event == TrainingEvent.EpochEnd).Metrics;
        Assert.Equal(1.0, metrics["codebookCollapse"]);
        Assert.InRange(metrics["usedCodes"], 1, 32);
        Assert.True(metrics["codebookUsage"] < 0.05);
        Assert.InRange(metrics["perplexity"], 1.0, 32.0);
        Assert.Contains(progress.Log, l => l.Contains("WARNING: codebook collapse"));
        Assert.Contains(result.Log, l => l.Contains("WARNING: codebook collapse"));
    }

    [Fact]
    public void WithoutTeacher_TargetsComeFromTheBatch()
    {
        using var tokenizer = NewTokenizer();
        var data = new SyntheticData(2, 5, (g, _) =>
        {
            var b = SyntheticData.Stripes(g, Batch, 32, unitRange: true);
            return new TrainingBatch { Images = b.Images, Targets = randn(new long[] { Batch, 16, 32 }, generator: g) };
        });
        var result = new TokenizerTrainer(tokenizer, null, Options() with { Epochs = 1 }).Run(data);
        Assert.Equal(2, result.Step);

        var noTargets = new SyntheticData(1, 5, (g, _) => SyntheticData.Stripes(g, Batch, 32, unitRange: true));
        using var other = NewTokenizer();
        var e = Assert.Throws<InvalidOperationException>(() => new TokenizerTrainer(other, null, Options()).Run(noTargets));
        Assert.Contains("Targets", e.Message);
    }

    [Fact]
    public void ResumedRun_GivesTheSameWeightsAsAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        using var teacher = Teacher();
        var options = Options() with { Epochs = 2, CheckpointDirectory = dir.Combine("a") };

        using var straight = NewTokenizer();
        new TokenizerTrainer(straight, teacher, options with { MaxSteps = 6 }).Run(Images());
        var expected = ModelState.Snapshot(straight);

        using var first = NewTokenizer();
        var part1 = new TokenizerTrainer(first, teacher, options with { MaxSteps = 3, CheckpointDirectory = dir.Combine("b") })
            .Run(Images(), Images(1, seed: 50));
        Assert.Equal(3, part1.Step);

        using var second = NewTokenizer(seed: 99);
        var part2 = new TokenizerTrainer(second, teacher, options with { MaxSteps = 6, ResumeFrom = part1.CheckpointPath }).Run(Images());
        Assert.Equal(6, part2.Step);
        // Weights, the EMA codebook, the initted flag and the usage statistic all continue exactly.
        ModelState.AssertIdentical(expected, second);
        ModelState.Dispose(expected);
    }

    [Fact]
    public void CodebookStatistics_FromHistogram()
    {
        var s = CodebookStatistics.FromHistogram(new double[] { 2, 2, 0, 0 });
        Assert.Equal(2, s.UsedCodes);
        Assert.Equal(0.5, s.Usage);
        Assert.Equal(2.0, s.Perplexity, 12);
        Assert.Equal(0.5, s.MaxShare);
        Assert.Equal(4.0, CodebookStatistics.FromHistogram(new double[] { 1, 1, 1, 1 }).Perplexity, 12);
    }
}
