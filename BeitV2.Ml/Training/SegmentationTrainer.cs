using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// Options of <see cref="SegmentationTrainer"/> (the unilm beit2/semantic_segmentation UperNet configs): AdamW (0.9, 0.999), weight decay 0.05,
/// layer decay, poly schedule (power 1, min lr 0) with linear warmup from ratio 1e-6, iteration based.
/// Warmup is <see cref="TrainerOptions.WarmupSteps"/> iterations (or <see cref="TrainerOptions.WarmupEpochs"/> × batches).
/// </summary>
public sealed record SegmentationTrainerOptions : TrainerOptions
{
    public SegmentationTrainerOptions()
    {
        LearningRate = 5e-5;
        MinLearningRate = 0;
        WeightDecay = 0.05;
        Beta1 = 0.9;
        Beta2 = 0.999;
    }

    /// <summary>Layer decay rate: scale rate^(L+1−id).</summary>
    public double LayerDecay { get; init; } = 0.75;
    /// <summary>Total iterations of the plan (mmseg max_iters); null = epochs × batches per epoch.</summary>
    public int? Iterations { get; init; }
    public double Power { get; init; } = 1.0;
    public double WarmupRatio { get; init; } = 1e-6;
    /// <summary>Drop path of the recipe's backbone; applied by <see cref="SegmentationTrainer.CreateModel"/>.</summary>
    public double? DropPathRate { get; init; }
    /// <summary>
    /// Per-class weights of both heads' cross entropy (mmseg's <c>class_weight</c>, <see cref="SegmentationOps.CrossEntropy"/>),
    /// one per class of the model; null = unweighted (the reference recipe).
    /// </summary>
    public IReadOnlyList<double>? ClassWeights { get; init; }

    /// <summary>upernet_beit_base_12_512_slide_160k_ade20k (pt1k): lr 5e-5, layer decay 0.75, 160k iterations, warmup 1500, drop path 0.15.</summary>
    public static SegmentationTrainerOptions BasePt1k() => new()
    {
        LearningRate = 5e-5, LayerDecay = 0.75, Iterations = 160_000, WarmupSteps = 1500, WarmupRatio = 1e-6, Power = 1.0,
        MinLearningRate = 0, WeightDecay = 0.05, DropPathRate = 0.15,
    };

    /// <summary>Base from pt1k_ft21k: layer decay 0.85.</summary>
    public static SegmentationTrainerOptions BasePt1kFt21k() => BasePt1k() with { LayerDecay = 0.85 };

    /// <summary>Large from pt1k: lr 4e-5, layer decay 0.9, drop path 0.2.</summary>
    public static SegmentationTrainerOptions LargePt1k() => BasePt1k() with { LearningRate = 4e-5, LayerDecay = 0.9, DropPathRate = 0.2 };

    /// <summary>Large from pt1k_ft21k: lr 3e-5, layer decay 0.9, drop path 0.2.</summary>
    public static SegmentationTrainerOptions LargePt1kFt21k() => LargePt1k() with { LearningRate = 3e-5 };

    internal override void Validate()
    {
        base.Validate();
        Require(LayerDecay is > 0 and <= 1, "layer decay must be in (0, 1]");
        Require(Iterations is null or >= 1, "iterations must be positive");
        Require(WarmupRatio is > 0 and <= 1, "warmup ratio must be in (0, 1]");
        Require(ClassWeights is null || (ClassWeights.Count > 0 && ClassWeights.All(w => double.IsFinite(w) && w >= 0) && ClassWeights.Any(w => w > 0)),
            "class weights must be finite, non-negative and not all 0");
    }
}

/// <summary>
/// Trains a <see cref="BeitSegmenter"/> (mmseg 0.11 + LayerDecayOptimizerConstructor):
/// loss = decode CE + 0.4 · auxiliary CE with ignore index 255 (<see cref="BeitSegmenter.Loss"/>), optionally class-weighted
/// (<see cref="SegmentationTrainerOptions.ClassWeights"/>),
/// poly lr with warmup, per-group layer decay. Evaluation on the held-out split: <c>mIoU</c>,
/// <c>mAcc</c>, <c>aAcc</c> (<see cref="SegmentationMetrics"/>, whole-split areas). Step metrics:
/// <c>decodeLoss</c>, <c>auxLoss</c>.
/// </summary>
/// <remarks>Batches: <see cref="TrainingBatch.Images"/> (normalised, the model's size) and <see cref="TrainingBatch.Masks"/>
/// (B, H, W). Batch size must be ≥ 2 (BatchNorm in the necks/heads).</remarks>
public sealed class SegmentationTrainer : TrainerBase
{
    private readonly BeitSegmenter model;

    public SegmentationTrainer(BeitSegmenter model, SegmentationTrainerOptions options) : base(TrainingStages.Segmentation, options)
    {
        if (options.ClassWeights is { Count: var n } && n != model.Config.NumClasses)
            throw new ArgumentException($"{n} class weights were given for a model of {model.Config.NumClasses} classes; give one per class.");
        this.model = model;
        Options = options;
    }

    public SegmentationTrainerOptions Options { get; }
    public BeitSegmenter Model => model;

    /// <summary>A segmenter from <paramref name="config"/> (with the options' drop path), optionally initialised from a ViT / MIM / segmenter checkpoint.</summary>
    public static BeitSegmenter CreateModel(SegmentationConfig config, SegmentationTrainerOptions? options = null, string? initCheckpoint = null)
    {
        if (options?.DropPathRate is { } dp) config = config with { Backbone = config.Backbone with { DropPathRate = dp } };
        var model = new BeitSegmenter(config);
        if (initCheckpoint is null) return model;
        try
        {
            SegmenterCheckpoint.Load(model, initCheckpoint);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A segmenter of <paramref name="numClasses"/> classes initialised from a loaded model:
    /// <list type="bullet">
    /// <item>a segmenter: its config with the new class count and all its weights, except that both heads'
    /// final classifiers (<c>decode_head.conv_seg</c>, <c>auxiliary_head.conv_seg</c>) stay fresh when the
    /// class count differs (mmseg skips weights of another shape in the same way);</item>
    /// <item>a classifier, backbone or MIM model: <see cref="SegmentationConfig.FromBackbone"/> on its transformer
    /// (at <paramref name="imageSize"/> when given), whose weights initialise the backbone only.</item>
    /// </list>
    /// <paramref name="outputStride"/> (<see cref="SegmentationConfig.OutputStride"/>) replaces the source segmenter's
    /// (or the default 4); when it changes a segmenter's neck layout, the necks (<c>backbone.fpn*</c>) start fresh too.
    /// </summary>
    public static BeitSegmenter CreateModel(nn.Module source, int numClasses, int? imageSize = null, SegmentationTrainerOptions? options = null,
        int? outputStride = null)
    {
        var config = source switch
        {
            BeitSegmenter seg => seg.Config with { NumClasses = numClasses },
            BeitVisionTransformer vit => SegmentationConfig.FromBackbone(vit.Config with { ImgSize = imageSize ?? vit.Config.ImgSize }, numClasses),
            BeitMim mim => SegmentationConfig.FromBackbone(mim.Config.ToBackbone(0) with { ImgSize = imageSize ?? mim.Config.ImgSize }, numClasses),
            _ => throw new ArgumentException("Segmentation starts from a ViT, MIM or segmenter model."),
        };
        if (outputStride is { } stride) config = config with { OutputStride = stride };
        if (options?.DropPathRate is { } dp) config = config with { Backbone = config.Backbone with { DropPathRate = dp } };
        var model = new BeitSegmenter(config);
        try
        {
            var weights = source.state_dict();
            if (source is BeitSegmenter { Config: var sourceConfig })
            {
                if (sourceConfig.NumClasses != numClasses) weights = WithFresh(weights, model, IsClassifier);
                if (sourceConfig.OutputStride != config.OutputStride) weights = WithFresh(weights, model, IsNeck);
            }
            SegmenterCheckpoint.Load(model, weights);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }

        static bool IsClassifier(string key) =>
            key.StartsWith("decode_head.conv_seg.", StringComparison.Ordinal) || key.StartsWith("auxiliary_head.conv_seg.", StringComparison.Ordinal);

        static bool IsNeck(string key) => key.StartsWith("backbone.fpn", StringComparison.Ordinal);
    }

    /// <summary>The source's weights with the new model's own (freshly initialised) tensors in place of the source's for the keys <paramref name="part"/> selects.</summary>
    private static Dictionary<string, Tensor> WithFresh(Dictionary<string, Tensor> weights, BeitSegmenter model, Func<string, bool> part)
    {
        var fresh = model.state_dict();
        var result = new Dictionary<string, Tensor>(weights, StringComparer.Ordinal);
        foreach (var key in weights.Keys.Where(part)) result.Remove(key);
        foreach (var (key, value) in fresh.Where(kv => part(kv.Key))) result[key] = value;
        return result;
    }

    public TrainingResult Run(ITrainingData train, ITrainingData? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => RunCore(train, validation, progress, cancellationToken);

    private protected override nn.Module CheckpointModule => model;

    private protected override IReadOnlyList<ParameterGroup> CreateParameterGroups() =>
        ParameterGroups.ForSegmentation(model, Options.WeightDecay, Options.LayerDecay);

    private protected override long PlannedSteps(int stepsPerEpoch) => Options.Iterations ?? (long)Options.Epochs * stepsPerEpoch;

    private protected override ILrSchedule CreateSchedule(int stepsPerEpoch, long plannedSteps)
    {
        var warmup = Options.WarmupSteps > 0 ? Options.WarmupSteps : Options.WarmupEpochs * stepsPerEpoch;
        return new PolySchedule(Options.LearningRate, checked((int)plannedSteps), Options.Power, Options.MinLearningRate, warmup, Options.WarmupRatio);
    }

    private protected override void MoveToDevice() => model.to(Device);

    private protected override void SetTrainMode() => model.train();

    private protected override StepOutput TrainStep(TrainingBatch batch, long step)
    {
        var masks = batch.Masks ?? throw new InvalidOperationException("Segmentation training needs batches with Masks (B, H, W).");
        if (batch.Count < 2) throw new InvalidOperationException("Segmentation training needs at least 2 images per batch (BatchNorm).");
        // One value per class, made per step in the step's dispose scope rather than held in a field the trainer would have to dispose.
        var weights = Options.ClassWeights is { } cw ? tensor(cw.Select(w => (float)w).ToArray()).to(Device) : null;
        var loss = model.Loss(batch.Images, masks, weights);
        var metrics = new Dictionary<string, double>();
        using (no_grad())
        {
            metrics["decodeLoss"] = loss.Decode.to(float64).item<double>();
            if (loss.Auxiliary is not null) metrics["auxLoss"] = loss.Auxiliary.to(float64).item<double>();
        }
        return new StepOutput(loss.Total, metrics);
    }

    private protected override Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken)
    {
        model.eval();
        var metrics = SegmentationEvaluation.Evaluate(model, validation, Device, cancellationToken);
        return new Dictionary<string, double> { ["mIoU"] = metrics.MeanIoU, ["mAcc"] = metrics.MeanAccuracy, ["aAcc"] = metrics.PixelAccuracy };
    }
}
