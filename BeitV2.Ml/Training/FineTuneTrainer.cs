using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// Options of <see cref="FineTuneTrainer"/> (unilm beit2/run_class_finetuning.py). Defaults are small (base recipe
/// settings with a short plan); the presets are the get_started_for_image_classification.md rows.
/// Mixup / CutMix, RandAugment, random erasing and model EMA are data-side or not implemented.
/// </summary>
public sealed record FineTuneOptions : TrainerOptions
{
    public FineTuneOptions()
    {
        LearningRate = 5e-4;
        MinLearningRate = 1e-6;
        WeightDecay = 0.05;
        Beta1 = 0.9;
        Beta2 = 0.999;
    }

    /// <summary>Layer-wise lr decay (1 = off); block i gets decay^(L−i), the embeddings decay^(L+1).</summary>
    public double LayerDecay { get; init; } = 0.65;
    /// <summary>Label smoothing of the cross-entropy (timm LabelSmoothingCrossEntropy).</summary>
    public double LabelSmoothing { get; init; } = 0.1;
    /// <summary>No weight decay on the per-layer relative position tables (<c>--disable_weight_decay_on_rel_pos_bias</c>).</summary>
    public bool DisableWeightDecayOnRelPosBias { get; init; }
    /// <summary>Drop path of the recipe; applied by <see cref="FineTuneTrainer.CreateModel"/> (the model config owns it).</summary>
    public double? DropPathRate { get; init; }

    /// <summary>Base from the 1600-epoch pt1k checkpoint: lr 5e-4, 100 epochs, warmup 5 (script default), layer decay 0.6, drop path 0.2.</summary>
    public static FineTuneOptions BaseFromPt1k1600() => new()
    {
        Epochs = 100, WarmupEpochs = 5, LearningRate = 5e-4, MinLearningRate = 1e-6, LayerDecay = 0.6, DropPathRate = 0.2,
    };

    /// <summary>Base from the 300-epoch pt1k checkpoint: as above with layer decay 0.65, drop path 0.1.</summary>
    public static FineTuneOptions BaseFromPt1k300() => BaseFromPt1k1600() with { LayerDecay = 0.65, DropPathRate = 0.1 };

    /// <summary>Base from pt1k_ft21k: lr 5e-5, 30 epochs, warmup 20 (as get_started_for_image_classification.md gives it), layer decay 0.75, drop path 0.1.</summary>
    public static FineTuneOptions BaseFromPt1kFt21k() => new()
    {
        Epochs = 30, WarmupEpochs = 20, LearningRate = 5e-5, MinLearningRate = 1e-6, LayerDecay = 0.75, DropPathRate = 0.1,
    };

    /// <summary>Large from pt1k (1600 epochs): lr 2e-4, 50 epochs, warmup 5 (script default), layer decay 0.8, drop path 0.2.</summary>
    public static FineTuneOptions LargeFromPt1k() => new()
    {
        Epochs = 50, WarmupEpochs = 5, LearningRate = 2e-4, MinLearningRate = 1e-6, LayerDecay = 0.8, DropPathRate = 0.2,
    };

    /// <summary>Large from pt1k_ft21k: lr 7e-5, 20 epochs, warmup 5, layer decay 0.8, drop path 0.25.</summary>
    public static FineTuneOptions LargeFromPt1kFt21k() => new()
    {
        Epochs = 20, WarmupEpochs = 5, LearningRate = 7e-5, MinLearningRate = 1e-6, LayerDecay = 0.8, DropPathRate = 0.25,
    };

    /// <summary>ImageNet-21k intermediate fine-tuning (base): 90 epochs, lr 6e-4, warmup 20, layer decay 0.75, drop path 0.1 (0.2 for large).</summary>
    public static FineTuneOptions ImageNet21kIntermediate() => new()
    {
        Epochs = 90, WarmupEpochs = 20, LearningRate = 6e-4, MinLearningRate = 1e-6, LayerDecay = 0.75, DropPathRate = 0.1,
    };

    internal override void Validate()
    {
        base.Validate();
        Require(LayerDecay is > 0 and <= 1, "layer decay must be in (0, 1]");
        Require(LabelSmoothing is >= 0 and < 1, "label smoothing must be in [0, 1)");
        Require(DropPathRate is null or (>= 0 and < 1), "drop path must be in [0, 1)");
    }
}

/// <summary>
/// Fine-tuning of a <see cref="BeitVisionTransformer"/> classifier (run_class_finetuning): layer-wise
/// lr decay, weight-decay exemptions, label-smoothed cross-entropy, cosine schedule with warmup;
/// evaluation: <c>accuracy</c> (top-1), <c>top5Accuracy</c> (≥ 5 classes), <c>valLoss</c> (plain
/// cross-entropy, as the reference's evaluate). Step metric: <c>trainAccuracy</c>.
/// </summary>
public sealed class FineTuneTrainer : TrainerBase
{
    private readonly BeitVisionTransformer model;

    public FineTuneTrainer(BeitVisionTransformer model, FineTuneOptions options) : base(TrainingStages.FineTune, options)
    {
        if (model.Head is null) throw new ArgumentException("The model has no classification head (num_classes = 0).", nameof(model));
        this.model = model;
        Options = options;
    }

    public FineTuneOptions Options { get; }
    public BeitVisionTransformer Model => model;

    /// <summary>
    /// A classifier for fine-tuning: <paramref name="config"/> (with the options' drop path when set), from
    /// scratch or initialised from a pretraining / backbone / classifier checkpoint (the head is kept
    /// fresh when its class count differs, as the reference does).
    /// </summary>
    public static BeitVisionTransformer CreateModel(VitConfig config, FineTuneOptions? options = null, string? initCheckpoint = null)
    {
        if (options?.DropPathRate is { } dp) config = config with { DropPathRate = dp };
        var model = new BeitVisionTransformer(config);
        if (initCheckpoint is null) return model;
        try
        {
            VitCheckpoint.Load(model, initCheckpoint, allowHeadMismatch: true);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A classifier of <paramref name="numClasses"/> classes initialised from a loaded model: a classifier or
    /// backbone (its config with the new class count) or a MIM pretraining model (its fine-tuning backbone,
    /// <see cref="MimConfig.ToBackbone"/>). The transformer's weights are copied; the classification head is
    /// kept fresh when the class count differs, as the reference does for a head of another shape.
    /// </summary>
    public static BeitVisionTransformer CreateModel(nn.Module source, int numClasses, FineTuneOptions? options = null)
    {
        var config = source switch
        {
            BeitVisionTransformer vit => vit.Config with { NumClasses = numClasses },
            BeitMim mim => mim.Config.ToBackbone(numClasses),
            _ => throw new ArgumentException("Fine-tuning starts from a ViT or MIM model."),
        };
        if (options?.DropPathRate is { } dp) config = config with { DropPathRate = dp };
        var model = new BeitVisionTransformer(config);
        try
        {
            VitCheckpoint.Load(model, source.state_dict(), allowHeadMismatch: true);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public TrainingResult Run(ITrainingData train, ITrainingData? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => RunCore(train, validation, progress, cancellationToken);

    private protected override nn.Module CheckpointModule => model;

    private protected override IReadOnlyList<ParameterGroup> CreateParameterGroups() =>
        ParameterGroups.ForFineTuning(model, Options.WeightDecay, Options.LayerDecay, Options.DisableWeightDecayOnRelPosBias);

    private protected override void MoveToDevice() => model.to(Device);

    private protected override void SetTrainMode() => model.train();

    private protected override StepOutput TrainStep(TrainingBatch batch, long step)
    {
        var labels = ClassificationStep.Labels(batch, "Fine-tuning");
        var logits = model.forward(batch.Images);
        var loss = Losses.LabelSmoothingCrossEntropy(logits, labels, Options.LabelSmoothing);
        return ClassificationStep.Output(loss, logits, labels);
    }

    private protected override Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken)
    {
        model.eval();
        return ClassificationEvaluation.Run(validation, Device, model.forward, model.Config.NumClasses, cancellationToken);
    }
}
