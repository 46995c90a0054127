using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>Both heads' logits of one forward pass (training).</summary>
/// <param name="Decode">UPerHead logits (B, K, H/s, W/s), s = <see cref="SegmentationConfig.OutputStride"/> (4 by default).</param>
/// <param name="Auxiliary">FCN head logits at the resolution of its input level (H/16 for in_index 2), or null without an auxiliary head.</param>
public sealed record SegmentationOutput(Tensor Decode, Tensor? Auxiliary) : IDisposable
{
    public void Dispose()
    {
        Decode.Dispose();
        Auxiliary?.Dispose();
    }
}

/// <summary>The training loss: Total = Decode + aux_loss_weight · Auxiliary (each an mmseg 0.11 cross-entropy).</summary>
/// <param name="Auxiliary">already multiplied by the auxiliary weight (as mmseg logs <c>aux.loss_seg</c>); null without an auxiliary head.</param>
public sealed record SegmentationLoss(Tensor Total, Tensor Decode, Tensor? Auxiliary) : IDisposable
{
    public void Dispose()
    {
        Total.Dispose();
        Decode.Dispose();
        Auxiliary?.Dispose();
    }
}

/// <summary>
/// BEiT v2 semantic segmentation (unilm beit2/semantic_segmentation, mmseg 0.11 EncoderDecoder):
/// <c>backbone</c> (<see cref="BeitSegmentationBackbone"/>, BEiT blocks + FPN necks),
/// <c>decode_head</c> (<see cref="UperHead"/>) and <c>auxiliary_head</c> (<see cref="FcnHead"/>, on
/// neck output aux_in_index). State-dict keys are those of the official mmseg checkpoints.
/// </summary>
/// <remarks>
/// Input: normalised images of exactly the configured size (the relative position tables fix the
/// patch grid); other sizes throw. The reference evaluates ADE20K with sliding 512×512 windows
/// (stride 341) over a resized image — that inference mode is not implemented here.
/// BatchNorm (SyncBN in the reference) uses batch statistics in training mode, so training needs
/// more than one value per channel: batch size ≥ 2 (the PPM's 1×1 pooling branch).
/// </remarks>
public sealed class BeitSegmenter : ExplicitModule<Tensor, Tensor>
{
    private readonly BeitSegmentationBackbone backbone;
    private readonly UperHead decodeHead;
    private readonly FcnHead? auxiliaryHead;

    public SegmentationConfig Config { get; }

    public BeitSegmenter(SegmentationConfig config) : base(nameof(BeitSegmenter))
    {
        config.Validate();
        Config = config;
        var c = config;
        long embed = c.Backbone.EmbedDim;
        backbone = new BeitSegmentationBackbone(c.Backbone, c.OutIndices, c.OutputStride);
        register_module("backbone", backbone);
        decodeHead = new UperHead(Enumerable.Repeat(embed, c.OutIndices.Count).ToArray(), c.Channels, c.NumClasses, c.PoolScales,
            c.DropoutRatio, c.AlignCorners);
        register_module("decode_head", decodeHead);
        if (c.UseAuxHead)
        {
            auxiliaryHead = new FcnHead(embed, c.AuxChannels, c.NumClasses, c.DropoutRatio);
            register_module("auxiliary_head", auxiliaryHead);
        }
    }

    public BeitSegmentationBackbone Backbone => backbone;
    public UperHead DecodeHead => decodeHead;
    public FcnHead? AuxiliaryHead => auxiliaryHead;

    /// <summary>Decode-head logits (B, num_classes, H/s, W/s), s = the output stride (4 by default) — before any resize to the image size.</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var features = backbone.forward(images);
        return decodeHead.forward(features).MoveToOuterDisposeScope();
    }

    /// <summary>Both heads' logits from one backbone pass (the auxiliary head is only used for the loss).</summary>
    public SegmentationOutput ForwardTrain(Tensor images)
    {
        using var scope = NewDisposeScope();
        var features = backbone.forward(images);
        var decode = decodeHead.forward(features);
        var aux = auxiliaryHead?.forward(features[Config.AuxInIndex]);
        decode.MoveToOuterDisposeScope();
        aux?.MoveToOuterDisposeScope();
        return new SegmentationOutput(decode, aux);
    }

    /// <summary>Decode logits resized bilinearly to <paramref name="size"/> (what the class map is taken from).</summary>
    public Tensor ForwardResized(Tensor images, (int Height, int Width) size)
    {
        CheckSize(size);
        using var logits = forward(images);
        return SegmentationOps.Resize(logits, size.Height, size.Width, Config.AlignCorners);
    }

    /// <summary>Class map (B, H, W) int64 at the input resolution.</summary>
    public Tensor Predict(Tensor images) => Predict(images, ((int)images.shape[2], (int)images.shape[3]));

    /// <summary>
    /// Class map (B, outH, outW) int64: the decode logits resized bilinearly (align_corners False)
    /// straight to <paramref name="size"/> (e.g. the original image size), then argmax over classes.
    /// Runs without gradients and does not change train/eval mode: call <c>eval()</c> first.
    /// </summary>
    public Tensor Predict(Tensor images, (int Height, int Width) size)
    {
        using var _ = no_grad();
        using var logits = ForwardResized(images, size);
        return logits.argmax(1);
    }

    /// <summary>
    /// <see cref="Predict(Tensor, ValueTuple{int, int})"/> and the backbone's pooled feature
    /// (<see cref="BeitSegmentationBackbone.ForwardWithPooled"/>) from one forward pass; call <c>eval()</c> first.
    /// </summary>
    public (Tensor Classes, Tensor Pooled) PredictWithPooled(Tensor images, (int Height, int Width) size)
    {
        CheckSize(size);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (features, pooled) = backbone.ForwardWithPooled(images);
        var logits = SegmentationOps.Resize(decodeHead.forward(features), size.Height, size.Width, Config.AlignCorners);
        return (logits.argmax(1).MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The training loss of mmseg 0.11's EncoderDecoder: each head's logits are resized bilinearly
    /// to the label size (the labels are never resized), cross-entropy with ignore_index
    /// (<see cref="SegmentationOps.CrossEntropy"/>), decode weight 1, auxiliary weight aux_loss_weight.
    /// </summary>
    /// <param name="labels">(B, H, W) or (B, 1, H, W) class ids (any integer type), ignore_index for unlabelled pixels.</param>
    /// <param name="classWeights">(num_classes) per-class weights of both heads' cross entropy (mmseg's class_weight), or null.</param>
    public SegmentationLoss Loss(Tensor images, Tensor labels, Tensor? classWeights = null)
    {
        using var scope = NewDisposeScope();
        var target = PrepareLabels(images, labels);
        long h = target.shape[1], w = target.shape[2];
        using var output = ForwardTrain(images);
        var decode = SegmentationOps.CrossEntropy(SegmentationOps.Resize(output.Decode, h, w, Config.AlignCorners), target, Config.IgnoreIndex,
            classWeights);
        Tensor? aux = null;
        if (output.Auxiliary is not null)
            aux = SegmentationOps.CrossEntropy(SegmentationOps.Resize(output.Auxiliary, h, w, Config.AlignCorners), target, Config.IgnoreIndex,
                      classWeights)
                  * Config.AuxLossWeight;
        var total = aux is null ? decode.alias() : decode + aux;
        total.MoveToOuterDisposeScope();
        decode.MoveToOuterDisposeScope();
        aux?.MoveToOuterDisposeScope();
        return new SegmentationLoss(total, decode, aux);
    }

    private Tensor PrepareLabels(Tensor images, Tensor labels)
    {
        var target = labels;
        if (target.dim() == 4 && target.shape[1] == 1) target = target.squeeze(1);
        if (target.dim() != 3 || target.shape[0] != images.shape[0])
            throw new ArgumentException(
                $"Labels must be (B, H, W) or (B, 1, H, W) with B = {images.shape[0]}, got ({string.Join(", ", labels.shape)}).", nameof(labels));
        if (target.is_floating_point() || target.is_complex() || target.dtype == ScalarType.Bool)
            throw new ArgumentException($"Labels must hold integer class ids, got {labels.dtype}.", nameof(labels));
        if (target.dtype != ScalarType.Int64) target = target.to(ScalarType.Int64);
        if (target.device != images.device) target = target.to(images.device);
        var bad = (target.lt(0) | target.ge(Config.NumClasses)) & target.ne(Config.IgnoreIndex);
        if (bad.any().item<bool>())
        {
            var value = target.masked_select(bad)[0].item<long>();
            throw new ArgumentException(
                $"Label value {value} is neither a class id in 0..{Config.NumClasses - 1} nor the ignore index {Config.IgnoreIndex}.", nameof(labels));
        }
        return target;
    }

    private static void CheckSize((int Height, int Width) size)
    {
        if (size.Height <= 0 || size.Width <= 0)
            throw new ArgumentException($"The output size must be positive, got {size.Height}x{size.Width}.", nameof(size));
    }
}
