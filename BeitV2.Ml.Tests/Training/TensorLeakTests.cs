using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using TorchSharp;

namespace BeitV2.Ml.Tests.Training;

/// <summary>
/// A long run must not accumulate native tensors: the number of live tensors created on the training
/// thread is the same after step 4 and after step 12 (steps, epoch ends, evaluations and checkpoints
/// in between all release what they create).
/// </summary>
[Collection(TrainingCollection.Name)]
public class TensorLeakTests
{
    private static List<long> LiveCountsAtSteps(Func<RecordingProgress, TrainingResult> run)
    {
        var counts = new Dictionary<long, long>();
        var progress = new RecordingProgress(r =>
        {
            if (r.Event == TrainingEvent.Step) counts[r.Step] = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        });
        run(progress);
        return new List<long> { counts[4], counts[8], counts[12] };
    }

    private static void AssertFlat(List<long> counts) =>
        Assert.True(counts[0] == counts[1] && counts[1] == counts[2], $"live tensors after steps 4, 8, 12: {string.Join(", ", counts)}");

    [Fact]
    public void FineTune_NoTensorLeak()
    {
        using var dir = new TempDirectory();
        TrainerBase.SeedEverything(1);
        using var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 2) with { DropPathRate = 0.1 });
        var train = new SyntheticData(4, 1, (g, _) => SyntheticData.Stripes(g, 4, 32));
        var val = new SyntheticData(1, 2, (g, _) => SyntheticData.Stripes(g, 4, 32));
        AssertFlat(LiveCountsAtSteps(p => new FineTuneTrainer(model, new FineTuneOptions
        {
            Epochs = 4, ReportEverySteps = 1, ClipGrad = 1.0, CheckpointDirectory = dir.Path,
        }).Run(train, val, p)));
    }

    [Fact]
    public void Tokenizer_NoTensorLeak()
    {
        TrainerBase.SeedEverything(2);
        using var teacher = new BackboneTeacher(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)));
        using var tokenizer = new VqkdTokenizer(VqkdConfig.Micro());
        var train = new SyntheticData(4, 1, (g, _) => SyntheticData.Stripes(g, 4, 32, unitRange: true));
        AssertFlat(LiveCountsAtSteps(p => new TokenizerTrainer(tokenizer, teacher, new TokenizerTrainerOptions
        {
            Epochs = 4, ReportEverySteps = 1,
        }).Run(train, train, p)));
    }

    [Fact]
    public void Segmentation_NoTensorLeak()
    {
        TrainerBase.SeedEverything(3);
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 3));
        var train = new SyntheticData(4, 1, (g, _) => new TrainingBatch
        {
            Images = torch.randn(new long[] { 2, 3, 64, 64 }, generator: g),
            Masks = torch.randint(0, 3, new long[] { 2, 64, 64 }, generator: g),
        });
        AssertFlat(LiveCountsAtSteps(p => new SegmentationTrainer(model, new SegmentationTrainerOptions
        {
            Epochs = 3, ReportEverySteps = 1,
        }).Run(train, train, p)));
    }

    [Fact]
    public void PretrainAndProbe_NoTensorLeak()
    {
        TrainerBase.SeedEverything(4);
        using var tokenizer = new VqkdTokenizer(VqkdConfig.Micro());
        var train = new SyntheticData(4, 1, (g, _) => SyntheticData.Stripes(g, 4, 32, unitRange: true));
        using (var g = new torch.Generator(1))
        using (var b = SyntheticData.Stripes(g, 4, 32, unitRange: true))
        using (var targets = torch.randn(4, 16, 32))
        using (torch.no_grad())
        using (tokenizer.Forward(b.Images, targets)) { } // k-means initialises the codebook
        using var mim = new BeitMim(MimConfig.Micro(vocabSize: 64) with { DropPathRate = 0.1 });
        AssertFlat(LiveCountsAtSteps(p => new PretrainTrainer(mim, tokenizer, new PretrainTrainerOptions
        {
            Epochs = 4, ReportEverySteps = 1,
        }).Run(train, null, p)));
        AssertFlat(LiveCountsAtSteps(p => new LinearProbeTrainer(mim, new LinearProbeOptions
        {
            NumClasses = 2, Epochs = 4, ReportEverySteps = 1,
        }).Run(train, train, p)));
    }
}
