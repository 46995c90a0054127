using BeitV2.Ml.Data;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Training;
using TrainingBatch = BeitV2.Ml.Training.TrainingBatch;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class SegmentationTrainerTests
{
    private const int Batch = 4;
    private const int Size = 64;

    /// <summary>A rectangle of class 1..4 (its brightness tells the class) on a dark background (class 0); the top row is unlabelled (255).</summary>
    private static TrainingBatch Rectangles(Generator g, int batch)
    {
        using var r = rand(batch * 5, generator: g);
        using var noise = rand(batch * Size * Size, generator: g);
        var u = r.data<float>().ToArray();
        var nz = noise.data<float>().ToArray();
        var images = new float[batch * 3 * Size * Size];
        var masks = new byte[batch * Size * Size];
        for (var b = 0; b < batch; b++)
        {
            var cls = 1 + (int)(u[b * 5] * 4) % 4;
            int h = 16 + (int)(u[b * 5 + 1] * 32), w = 16 + (int)(u[b * 5 + 2] * 32);
            int top = (int)(u[b * 5 + 3] * (Size - h)), left = (int)(u[b * 5 + 4] * (Size - w));
            for (var y = 0; y < Size; y++)
                for (var x = 0; x < Size; x++)
                {
                    var inside = y >= top && y < top + h && x >= left && x < left + w;
                    var label = inside ? cls : 0;
                    masks[(b * Size + y) * Size + x] = (byte)(y == 0 ? 255 : label);
                    var v = (inside ? -1 + 0.5 * cls : -1.2) + 0.2 * (nz[(b * Size + y) * Size + x] - 0.5);
                    for (var c = 0; c < 3; c++) images[((b * 3 + c) * Size + y) * Size + x] = (float)v;
                }
        }
        return new TrainingBatch
        {
            Images = tensor(images, new long[] { batch, 3, Size, Size }),
            Masks = tensor(masks, new long[] { batch, Size, Size }),
        };
    }

    private static SyntheticData Train(int batches = 4) => new(batches, 5, (g, _) => Rectangles(g, Batch));
    private static SyntheticData Validation() => new(2, 55, (g, _) => Rectangles(g, Batch)) { SameEveryEpoch = true };

    private static BeitSegmenter NewModel(long seed = 8, int classes = 5)
    {
        TrainerBase.SeedEverything(seed);
        return new BeitSegmenter(SegmentationConfig.Micro(numClasses: classes)); // dropout 0.1 before both classifiers
    }

    private static SegmentationTrainerOptions Options() => new()
    {
        Epochs = 5, LearningRate = 2e-3, WarmupSteps = 2, LayerDecay = 0.9, Seed = 4, ReportEverySteps = 2,
    };

    [Fact]
    public void LossDecreases_MeanIoUReported()
    {
        using var model = NewModel();
        var progress = new RecordingProgress();
        var result = new SegmentationTrainer(model, Options()).Run(Train(), Validation(), progress);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Equal(20, result.Step);
        var epochs = progress.Reports.Where(r => r.Event == TrainingEvent.EpochEnd).Select(r => r.Metrics).ToList();
        Assert.True(epochs[^1]["loss"] < epochs[0]["loss"] - 0.2, $"segmentation loss {epochs[0]["loss"]} → {epochs[^1]["loss"]}");
        Assert.Contains("decodeLoss", epochs[0].Keys);
        Assert.Contains("auxLoss", epochs[0].Keys);
        var evals = progress.Reports.Where(r => r.Event == TrainingEvent.Evaluation).Select(r => r.Metrics).ToList();
        Assert.Equal(5, evals.Count);
        Assert.InRange(evals[^1]["mIoU"], 0, 1);
        Assert.InRange(evals[^1]["aAcc"], 0, 1);
        Assert.True(evals[^1]["aAcc"] > 0.6, $"pixel accuracy {evals[^1]["aAcc"]}");
        Assert.All(progress.Reports, r => Assert.Equal("segmentation", r.Stage));
        // Poly schedule with linear warmup (2 iterations): the 4th step (iteration 3) has (1 − 3/20) · lr.
        Assert.Equal(2e-3 * (1 - 3.0 / 20), progress.Reports.First(r => r.Event == TrainingEvent.Step && r.Step == 4).LearningRate, 12);
    }

    [Fact]
    public void IterationBudget_StopsMidEpoch_WithTheScheduleOfThePlan()
    {
        using var model = NewModel();
        var result = new SegmentationTrainer(model, Options() with { Iterations = 6 }).Run(Train(), null);
        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Equal(6, result.Step);
        Assert.Equal(1, result.Epoch); // the second epoch, cut at the plan's end
    }

    [Fact]
    public void ResumedRun_GivesTheSameWeightsAsAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        var options = Options() with { Epochs = 2, CheckpointDirectory = dir.Combine("a") };

        using var straight = NewModel();
        new SegmentationTrainer(straight, options with { MaxSteps = 6 }).Run(Train());
        var expected = ModelState.Snapshot(straight);

        using var first = NewModel();
        var part1 = new SegmentationTrainer(first, options with { MaxSteps = 3, CheckpointDirectory = dir.Combine("b") }).Run(Train(), Validation());
        using var second = NewModel(seed: 80);
        var part2 = new SegmentationTrainer(second, options with { MaxSteps = 6, ResumeFrom = part1.CheckpointPath }).Run(Train());
        Assert.Equal(6, part2.Step);
        // Dropout draws and BatchNorm running statistics continue exactly.
        ModelState.AssertIdentical(expected, second);
        ModelState.Dispose(expected);
    }

    /// <summary>
    /// Fresh scenes (a loader that serves the next window of the scene set each epoch): a run cut in the middle of its
    /// second epoch and resumed from the checkpoint ends with exactly the weights of an uninterrupted run.
    /// </summary>
    [Fact]
    public void FreshScenes_ResumedMidEpoch_GivesTheSameWeightsAsAnUninterruptedRun()
    {
        using var dir = new TempDirectory();
        var scenes = new FashionMnistSegmentationDataset(BeitV2.Ml.Tests.Data.FashionMnistData.Test, new FashionMnistSegmentationOptions { Count = 40, Seed = 9 });
        BatchLoaderTrainingData Data() => new(new BatchLoader(scenes, new SegmentationTrainTransform(Size),
            new BatchLoaderOptions { BatchSize = Batch, Seed = 3, DropLast = true, Workers = 2, EpochSize = 2 * Batch }));
        Assert.Equal(2, Data().BatchesPerEpoch);
        var options = Options() with { Epochs = 2, CheckpointDirectory = dir.Combine("a") };

        const int classes = 11; // background + the 10 Fashion-MNIST classes
        using var straight = NewModel(classes: classes);
        Assert.Equal(4, new SegmentationTrainer(straight, options).Run(Data()).Step);
        var expected = ModelState.Snapshot(straight);

        using var first = NewModel(classes: classes);
        var part1 = new SegmentationTrainer(first, options with { MaxSteps = 3, CheckpointDirectory = dir.Combine("b"), CheckpointEverySteps = 3 }).Run(Data());
        Assert.Equal(3, part1.Step); // one batch into the second epoch's new scenes
        using var second = NewModel(seed: 80, classes: classes);
        var part2 = new SegmentationTrainer(second, options with { ResumeFrom = part1.CheckpointPath }).Run(Data());
        Assert.Equal(4, part2.Step);
        ModelState.AssertIdentical(expected, second);
        ModelState.Dispose(expected);
    }

    /// <summary>Class weights reach the loss: all-1 weights train exactly as none, a background weight of 0.25 trains otherwise; bad weights are refused.</summary>
    [Fact]
    public void ClassWeights_OfOne_TrainAsNone_AndOthersChangeTheRun()
    {
        var options = Options() with { Epochs = 1, MaxSteps = 2 };
        using var plain = NewModel();
        var a = new SegmentationTrainer(plain, options).Run(Train(), null);
        using var ones = NewModel();
        var b = new SegmentationTrainer(ones, options with { ClassWeights = new double[] { 1, 1, 1, 1, 1 } }).Run(Train(), null);
        using var background = NewModel();
        var c = new SegmentationTrainer(background, options with { ClassWeights = new double[] { 0.25, 1, 1, 1, 1 } }).Run(Train(), null);
        Assert.Equal((2L, 2L, 2L), (a.Step, b.Step, c.Step));

        var expected = ModelState.Snapshot(plain);
        ModelState.AssertIdentical(expected, ones);
        Assert.True(ModelState.AnyDifferent(expected, background, _ => true));
        ModelState.Dispose(expected);

        // Under autocast (the heads' logits come back in float32; the weights follow the logits' type).
        using var bf16 = NewModel();
        var d = new SegmentationTrainer(bf16, options with { MaxSteps = 1, MixedPrecision = BeitV2.Ml.Precision.ComputePrecision.Bf16,
            ClassWeights = new double[] { 0.25, 1, 1, 1, 1 } }).Run(Train(), null);
        Assert.Equal(1, d.Step);

        using var model = NewModel();
        Assert.Contains("one per class", Assert.Throws<ArgumentException>(() =>
            new SegmentationTrainer(model, options with { ClassWeights = new double[] { 1, 1 } })).Message);
        Assert.Throws<ArgumentException>(() => new SegmentationTrainer(model, options with { ClassWeights = new double[] { 0, 0, 0, 0, 0 } }));
        Assert.Throws<ArgumentException>(() => new SegmentationTrainer(model, options with { ClassWeights = new double[] { -1, 1, 1, 1, 1 } }));
    }

    [Fact]
    public void MeanIoU_OverTheWholeSplit_IgnoresLabel255_AndAbsentClasses()
    {
        var m = new SegmentationMetrics(numClasses: 4);
        // image 1: labels [0 0 1 255], prediction [0 1 1 3]; image 2: labels [1 1 0 0], prediction [1 0 0 0]
        m.Update(tensor(new long[] { 0, 1, 1, 3 }).view(1, 2, 2), tensor(new long[] { 0, 0, 1, 255 }).view(1, 2, 2));
        m.Update(tensor(new long[] { 1, 0, 0, 0 }).view(1, 2, 2), tensor(new long[] { 1, 1, 0, 0 }).view(1, 2, 2));
        // class 0: I = 1 + 2 = 3, pred 1 + 3 = 4, label 2 + 2 = 4 → U = 5; class 1: I = 1 + 1 = 2, pred 2 + 1 = 3, label 1 + 2 = 3 → U = 4.
        // class 2: absent; class 3: predicted only on the ignored pixel → absent too.
        var iou = m.ClassIoU;
        Assert.Equal(3.0 / 5, iou[0], 12);
        Assert.Equal(2.0 / 4, iou[1], 12);
        Assert.True(double.IsNaN(iou[2]));
        Assert.True(double.IsNaN(iou[3]));
        Assert.Equal((0.6 + 0.5) / 2, m.MeanIoU, 12);
        Assert.Equal((3.0 / 4 + 2.0 / 3) / 2, m.MeanAccuracy, 12);
        Assert.Equal(5.0 / 7, m.PixelAccuracy, 12);
    }
}
