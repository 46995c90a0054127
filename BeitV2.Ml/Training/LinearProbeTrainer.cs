using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Which token feature a linear probe reads.</summary>
public enum ProbeFeature
{
    /// <summary>The [CLS] token.</summary>
    Cls,
    /// <summary>The mean of the patch tokens.</summary>
    Mean,
}

/// <summary>
/// Options of <see cref="LinearProbeTrainer"/>. BEiT v2 ships no probing script and its protocol is
/// not documented (unilm issue #1574 asks for it, unanswered); <see cref="Reference"/> follows BEiT v1's
/// beit/run_linear_eval.py (AdamW, cosine, 100 epochs, lr 1e-3 × batch / 256) with MAE's non-affine BatchNorm
/// before the linear layer. Warmup and weight decay are left out; 0 is used for both.
/// </summary>
public sealed record LinearProbeOptions : TrainerOptions
{
    public LinearProbeOptions()
    {
        LearningRate = 1e-3;
        MinLearningRate = 0;
        WeightDecay = 0;
    }

    /// <summary>Classes of the probe (required).</summary>
    public int NumClasses { get; init; }
    public ProbeFeature Feature { get; init; } = ProbeFeature.Cls;
    /// <summary>
    /// null: the backbone's final features (normed: for a mean-pooling ViT, Mean is its fc_norm feature
    /// and Cls its last block's raw [CLS]; for a MIM model both come from its final <c>norm</c>).
    /// i: the raw output of block i (0-based), <c>ForwardFeatures(keepHidden: true).Hidden[i]</c>.
    /// </summary>
    public int? Layer { get; init; }
    /// <summary>MAE's BatchNorm1d(affine=False, eps=1e-6) before the linear layer; folded into the linear layer in the delivered classifier.</summary>
    public bool BatchNorm { get; init; } = true;

    /// <summary>BEiT v1 style probe (see the type remarks): 100 epochs, lr 1e-3 × batch / 256, cosine to 0, no weight decay.</summary>
    public static LinearProbeOptions Reference(int numClasses, int totalBatchSize = 1024) => new()
    {
        NumClasses = numClasses, Epochs = 100, LearningRate = 1e-3 * totalBatchSize / 256.0, MinLearningRate = 0, WeightDecay = 0,
        WarmupEpochs = 0, Beta1 = 0.9, Beta2 = 0.999, BatchNorm = true,
    };

    internal override void Validate()
    {
        base.Validate();
        Require(NumClasses >= 1, "num_classes must be set (at least 1)");
        Require(Layer is null or >= 0, "layer must be a 0-based block index or null");
    }
}

/// <summary>The probe: optional non-affine BatchNorm1d (<c>bn</c>) and a linear layer (<c>head</c>).</summary>
public sealed class LinearProbeHead : ExplicitModule<Tensor, Tensor>
{
    private readonly BatchNorm1d? bn;
    private readonly Linear head;

    public LinearProbeHead(int features, int numClasses, bool batchNorm) : base(nameof(LinearProbeHead))
    {
        if (batchNorm)
        {
            bn = nn.BatchNorm1d(features, eps: 1e-6, affine: false);
            register_module("bn", bn);
        }
        head = nn.Linear(features, numClasses);
        register_module("head", head);
        Reset();
    }

    /// <summary>Fresh probe: weight trunc_normal(std 0.01) as MAE, bias 0, BatchNorm statistics reset.</summary>
    public void Reset()
    {
        using var _ = no_grad();
        TruncatedNormal.Fill_(head.weight!, 0, 0.01, -2, 2);
        head.bias!.zero_();
        bn?.reset_running_stats();
    }

    public Linear Linear => head;
    public BatchNorm1d? BatchNorm => bn;

    public override Tensor forward(Tensor features) => head.forward(bn is null ? features : bn.forward(features));

    /// <summary>The eval-mode probe as one linear map: BatchNorm's running statistics folded into the weights.</summary>
    public (Tensor Weight, Tensor Bias) Folded()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor w = head.weight!, b = head.bias!;
        if (bn is not null)
        {
            var std = (bn.running_var! + bn.eps).sqrt();
            var scaledW = w / std.unsqueeze(0);
            b = b - scaledW.matmul(bn.running_mean!);
            w = scaledW;
        }
        return (w.detach().clone().MoveToOuterDisposeScope(), b.detach().clone().MoveToOuterDisposeScope());
    }
}

/// <summary>
/// A frozen backbone + probe, for probes a <see cref="BeitVisionTransformer"/> cannot express
/// (intermediate layers, or a feature other than the model's own pooled one).
/// </summary>
public sealed class LinearProbeClassifier : ExplicitModule<Tensor, Tensor>
{
    private readonly Func<Tensor, Tensor> features;

    internal LinearProbeClassifier(nn.Module backbone, LinearProbeHead probe, Func<Tensor, Tensor> features, ProbeFeature feature, int? layer)
        : base(nameof(LinearProbeClassifier))
    {
        this.features = features;
        Feature = feature;
        Layer = layer;
        Probe = probe;
        register_module("backbone", backbone);
        register_module("probe", probe);
    }

    public ProbeFeature Feature { get; }
    public int? Layer { get; }
    public LinearProbeHead Probe { get; }

    public override Tensor forward(Tensor images)
    {
        using var f = features(images);
        return Probe.forward(f);
    }
}

/// <summary>
/// Linear probing of a frozen <see cref="BeitVisionTransformer"/> or <see cref="BeitMim"/>: features
/// under no_grad in eval mode, a trained (BatchNorm +) linear layer, cross-entropy, accuracy on the
/// held-out split (<c>accuracy</c>, <c>top5Accuracy</c> with ≥ 5 classes, <c>valLoss</c>; step metric
/// <c>trainAccuracy</c>).
/// </summary>
/// <remarks>
/// The delivered model (<see cref="TrainingResult.Model"/>) is a plain <see cref="BeitVisionTransformer"/>
/// classifier whenever the probed feature is the one such a model feeds its head: the fc_norm mean
/// feature of a mean-pooling ViT (<see cref="ProbeFeature.Mean"/>, final layer), the normed [CLS] of a
/// [CLS]-pooling ViT, or the normed final [CLS] of a MIM model (→ a ViT with the MIM model's position
/// bias layout, [CLS] pooling and its final norm). The BatchNorm is folded into the head, so that
/// model can be served by the classification endpoints as is. Other probes give a
/// <see cref="LinearProbeClassifier"/>. The backbone's parameters are set to requires_grad = false.
/// Checkpoints hold only the probe (the backbone must be supplied again to resume).
/// </remarks>
public sealed class LinearProbeTrainer : TrainerBase
{
    private readonly nn.Module backbone;
    private readonly Func<Tensor, Tensor> extract;
    private readonly LinearProbeHead probe;

    public LinearProbeTrainer(BeitVisionTransformer backbone, LinearProbeOptions options) : base(TrainingStages.Probe, options)
    {
        CheckLayer(options.Layer, backbone.Depth);
        this.backbone = backbone;
        Options = options;
        extract = VitFeatures(backbone, options.Feature, options.Layer);
        probe = new LinearProbeHead(backbone.Config.EmbedDim, options.NumClasses, options.BatchNorm);
        Freeze();
    }

    public LinearProbeTrainer(BeitMim backbone, LinearProbeOptions options) : base(TrainingStages.Probe, options)
    {
        CheckLayer(options.Layer, backbone.Config.Depth);
        this.backbone = backbone;
        Options = options;
        extract = MimFeatures(backbone, options.Feature, options.Layer);
        probe = new LinearProbeHead(backbone.Config.EmbedDim, options.NumClasses, options.BatchNorm);
        Freeze();
    }

    /// <summary>
    /// A probe on a ViT or MIM backbone. Without <paramref name="feature"/> it reads what the backbone's own head
    /// would: the patch mean for a mean-pooling ViT, else the [CLS] token.
    /// </summary>
    /// <exception cref="ArgumentException">the backbone is neither a ViT nor a MIM model.</exception>
    public static LinearProbeTrainer For(nn.Module backbone, LinearProbeOptions options, ProbeFeature? feature = null) => backbone switch
    {
        BeitVisionTransformer vit => new(vit, options with { Feature = feature ?? (vit.Config.UseMeanPooling ? ProbeFeature.Mean : ProbeFeature.Cls) }),
        BeitMim mim => new(mim, options with { Feature = feature ?? ProbeFeature.Cls }),
        _ => throw new ArgumentException(NeedsVitOrMim, nameof(backbone)),
    };

    /// <summary>The image size a backbone takes (its data must be prepared at that size before the probe is built).</summary>
    /// <exception cref="ArgumentException">the backbone is neither a ViT nor a MIM model.</exception>
    public static int InputSize(nn.Module backbone) => backbone switch
    {
        BeitVisionTransformer vit => vit.Config.ImgSize,
        BeitMim mim => mim.Config.ImgSize,
        _ => throw new ArgumentException(NeedsVitOrMim, nameof(backbone)),
    };

    private const string NeedsVitOrMim = "A linear probe needs a ViT or MIM base model.";

    public LinearProbeOptions Options { get; }
    public LinearProbeHead Probe => probe;

    /// <summary>Whether the delivered model will be a plain <see cref="BeitVisionTransformer"/> classifier.</summary>
    public bool DeliversVisionTransformer => backbone switch
    {
        BeitVisionTransformer vit => Options.Layer is null && (vit.Config.UseMeanPooling
            ? Options.Feature == ProbeFeature.Mean
            : Options.Feature == ProbeFeature.Cls),
        BeitMim => Options.Layer is null && Options.Feature == ProbeFeature.Cls,
        _ => false,
    };

    public TrainingResult Run(ITrainingData train, ITrainingData? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => RunCore(train, validation, progress, cancellationToken);

    /// <summary>Probe features (B, C) of images, as the trainer computes them (no grad, backbone in eval mode).</summary>
    public Tensor ExtractFeatures(Tensor images)
    {
        using var _ = no_grad();
        backbone.eval();
        return extract(images);
    }

    private protected override nn.Module CheckpointModule => probe;

    /// <summary>The probe's initial weights are drawn from the run seed.</summary>
    private protected override void OnFreshStart() => probe.Reset();

    private protected override IReadOnlyList<ParameterGroup> CreateParameterGroups() =>
        ParameterGroups.Build(probe, Options.WeightDecay);

    private protected override void MoveToDevice()
    {
        backbone.to(Device);
        probe.to(Device);
    }

    private protected override void SetTrainMode()
    {
        backbone.eval();
        probe.train();
    }

    private protected override StepOutput TrainStep(TrainingBatch batch, long step)
    {
        var labels = RequireLabels(batch);
        Tensor f;
        using (no_grad()) f = extract(batch.Images);
        var logits = probe.forward(f);
        var loss = nn.functional.cross_entropy(logits, labels);
        return ClassificationStep.Output(loss, logits, labels);
    }

    private protected override Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken)
    {
        probe.eval();
        backbone.eval();
        return ClassificationEvaluation.Run(validation, Device, images => probe.forward(extract(images)), Options.NumClasses, cancellationToken);
    }

    private protected override nn.Module OutputModel()
    {
        probe.eval();
        if (!DeliversVisionTransformer)
            return new LinearProbeClassifier(backbone, probe, extract, Options.Feature, Options.Layer);
        var (w, b) = probe.Folded();
        using (w)
        using (b)
        {
            var vit = backbone switch
            {
                BeitVisionTransformer v => CopyVit(v, Options.NumClasses),
                BeitMim m => VitFromMim(m, Options.NumClasses),
                _ => throw new InvalidOperationException(),
            };
            using var _ = no_grad();
            vit.Head!.weight!.copy_(w);
            vit.Head!.bias!.copy_(b);
            vit.eval();
            return vit;
        }
    }

    private void Freeze()
    {
        foreach (var p in backbone.parameters()) p.requires_grad = false;
        backbone.eval();
    }

    private static Tensor RequireLabels(TrainingBatch batch) =>
        batch.Labels?.to(ScalarType.Int64) ?? throw new InvalidOperationException("Linear probing needs batches with Labels (B) class ids.");

    private static void CheckLayer(int? layer, int depth)
    {
        if (layer is { } l && l >= depth)
            throw new ArgumentException($"Invalid training options: layer {l} does not exist (the backbone has {depth} blocks, 0..{depth - 1}).");
    }

    private static Tensor Pool(Tensor tokens, ProbeFeature feature) =>
        feature == ProbeFeature.Cls ? tokens[.., 0].contiguous() : tokens[.., 1..].mean(new long[] { 1 });

    private static Func<Tensor, Tensor> VitFeatures(BeitVisionTransformer vit, ProbeFeature feature, int? layer) => images =>
    {
        using var scope = NewDisposeScope();
        using var output = vit.ForwardFeatures(images, keepHidden: layer is not null);
        Tensor f;
        if (layer is { } l) f = Pool(output.Hidden[l], feature);
        else if (feature == ProbeFeature.Mean && vit.Config.UseMeanPooling) f = output.Features.alias();
        else f = Pool(output.Tokens, feature);
        return f.MoveToOuterDisposeScope();
    };

    private static Func<Tensor, Tensor> MimFeatures(BeitMim mim, ProbeFeature feature, int? layer) => images =>
    {
        using var scope = NewDisposeScope();
        using var output = mim.ForwardFeatures(images, null, keepHidden: layer is not null);
        var f = layer is { } l ? Pool(output.Hidden[l], feature) : Pool(output.Final, feature);
        return f.MoveToOuterDisposeScope();
    };

    private static BeitVisionTransformer CopyVit(BeitVisionTransformer source, int numClasses)
    {
        var vit = new BeitVisionTransformer(source.Config with { NumClasses = numClasses });
        var sd = source.state_dict().Where(kv => !kv.Key.StartsWith("head.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        StateDictLoader.Load(vit, sd, "probe classifier", allowMissing: k => k.StartsWith("head.", StringComparison.Ordinal));
        return vit;
    }

    private static readonly string[] MimOnly = { "mask_token", "lm_head.", "cls_pt_layers.", "cls_pt_norm.", "cls_pt_lm_head." };

    private static BeitVisionTransformer VitFromMim(BeitMim source, int numClasses)
    {
        var c = source.Config;
        var vit = new BeitVisionTransformer(new VitConfig
        {
            ImgSize = c.ImgSize, PatchSize = c.PatchSize, InChans = c.InChans, NumClasses = numClasses, EmbedDim = c.EmbedDim,
            Depth = c.Depth, NumHeads = c.NumHeads, MlpRatio = c.MlpRatio, QkvBias = c.QkvBias, QkScale = c.QkScale,
            DropRate = c.DropRate, AttnDropRate = c.AttnDropRate, DropPathRate = c.DropPathRate, NormEps = c.NormEps,
            InitValues = c.InitValues, AttnHeadDim = c.AttnHeadDim, UseAbsPosEmb = c.UseAbsPosEmb, UseRelPosBias = c.UseRelPosBias,
            UseSharedRelPosBias = c.UseSharedRelPosBias, UseMeanPooling = false,
        });
        StateDictLoader.Load(vit, source.state_dict(), "probe classifier (from a MIM model)",
            ignoreUnexpected: k => MimOnly.Any(p => k.StartsWith(p, StringComparison.Ordinal)),
            allowMissing: k => k.StartsWith("head.", StringComparison.Ordinal));
        return vit;
    }
}
