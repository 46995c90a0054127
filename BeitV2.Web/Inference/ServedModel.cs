using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Registry;
using static TorchSharp.torch;

namespace BeitV2.Web.Inference;

/// <summary>Operations the inference endpoints ask of a model; results of one batch come back per image.</summary>
public static class Operations
{
    public const string Tokens = "tokens";
    public const string Features = "features";
    public const string Classify = "classify";
    public const string Segment = "segment";
}

/// <summary>Pooled features of one image: the [CLS] token and the mean of the patch tokens.</summary>
public sealed record FeatureResult(float[] Cls, float[] Mean);

/// <summary>Class logits of one image at the model's 1/4 resolution: (classes, height, width).</summary>
public sealed record SegmentationLogits(float[] Logits, int Classes, int Height, int Width);

/// <summary>
/// A loaded model plus what it can do. <see cref="Execute"/> runs on the model's worker thread
/// under inference mode, on a batch (B, 3, S, S), and returns one result per image.
/// </summary>
public abstract class ServedModel(ModelInfo info, nn.Module module) : IDisposable
{
    public ModelInfo Info { get; } = info;
    public nn.Module Module { get; } = module;
    /// <summary>Where the weights live (fixed once loaded); looked up once instead of on every batch.</summary>
    public Device Device { get; } = module.parameters().FirstOrDefault()?.device ?? CPU;
    public abstract ModelInput Input { get; }
    public abstract IReadOnlyCollection<string> Operations { get; }
    public abstract object[] Execute(string operation, Tensor batch);
    public void Dispose() => Module.Dispose();

    /// <summary>Row <paramref name="i"/> of a (B, …) result as float32 on the CPU (call on a tensor already on the CPU: one copy per batch).</summary>
    protected static float[] Row(Tensor t, long i) => t[i].to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
}

/// <summary>VQ-KD: visual token ids per patch, on [0, 1] input.</summary>
public sealed class ServedTokenizer(ModelInfo info, VqkdTokenizer model) : ServedModel(info, model)
{
    public override ModelInput Input { get; } = new(model.Config.Encoder.ImgSize, InputGeometry.CenterCrop, null);
    public override IReadOnlyCollection<string> Operations { get; } = new[] { Inference.Operations.Tokens };

    public override object[] Execute(string operation, Tensor batch)
    {
        var ids = model.GetCodebookIndices(batch).cpu();
        var result = new object[batch.shape[0]];
        for (var i = 0; i < result.Length; i++) result[i] = ids[i].data<long>().ToArray();
        return result;
    }
}

/// <summary>The BEiT ViT (backbone or classifier): pooled features and, with a head, class probabilities.</summary>
public sealed class ServedVit(ModelInfo info, BeitVisionTransformer model) : ServedModel(info, model)
{
    public override ModelInput Input { get; } = new(model.Config.ImgSize, InputGeometry.CenterCrop, PixelNormalization.ImageNet);

    public override IReadOnlyCollection<string> Operations { get; } = model.Head is null
        ? new[] { Inference.Operations.Features }
        : new[] { Inference.Operations.Features, Inference.Operations.Classify };

    public override object[] Execute(string operation, Tensor batch)
    {
        using var output = model.ForwardFeatures(batch);
        var result = new object[batch.shape[0]];
        if (operation == Inference.Operations.Classify)
        {
            var probs = model.ForwardHead(output.Features).softmax(-1).cpu();
            for (var i = 0; i < result.Length; i++) result[i] = Row(probs, i);
            return result;
        }
        // [CLS]: the last block's [CLS] after the final norm (identity for mean-pooling models).
        var cls = output.Tokens[.., 0].cpu();
        // Mean: the head input for mean-pooling models (fc_norm of the patch mean), else the mean of the normed patch tokens.
        var mean = (model.Config.UseMeanPooling ? output.Features : output.Tokens[.., 1..].mean(new long[] { 1 })).cpu();
        for (var i = 0; i < result.Length; i++) result[i] = new FeatureResult(Row(cls, i), Row(mean, i));
        return result;
    }
}

/// <summary>The MIM pretraining model as a feature extractor: its final normed [CLS] (trained by patch aggregation) and patch mean.</summary>
public sealed class ServedMim(ModelInfo info, BeitMim model) : ServedModel(info, model)
{
    public override ModelInput Input { get; } = new(model.Config.ImgSize, InputGeometry.CenterCrop, PixelNormalization.ImageNet);
    public override IReadOnlyCollection<string> Operations { get; } = new[] { Inference.Operations.Features };

    public override object[] Execute(string operation, Tensor batch)
    {
        using var f = model.ForwardFeatures(batch, null);
        var cls = f.Final[.., 0].cpu();
        var mean = f.Final[.., 1..].mean(new long[] { 1 }).cpu();
        var result = new object[batch.shape[0]];
        for (var i = 0; i < result.Length; i++) result[i] = new FeatureResult(Row(cls, i), Row(mean, i));
        return result;
    }
}

/// <summary>
/// UperNet segmentation: the whole image is resized to the model's size (the mask must cover all
/// of it), the decode head's logits are resized back to that size and arg-maxed; the endpoint maps
/// the class map onto the original image.
/// </summary>
public sealed class ServedSegmenter(ModelInfo info, BeitV2.Ml.Models.Segmentation.BeitSegmenter model) : ServedModel(info, model)
{
    public override ModelInput Input { get; } = new(model.Config.Backbone.ImgSize, InputGeometry.FullResize, PixelNormalization.ImageNet);
    public override IReadOnlyCollection<string> Operations { get; } = new[] { Inference.Operations.Segment };

    public override object[] Execute(string operation, Tensor batch)
    {
        var size = Input.Size;
        var classes = model.Predict(batch, (size, size)).cpu();
        var result = new object[batch.shape[0]];
        for (var i = 0; i < result.Length; i++)
            result[i] = classes[i].to_type(ScalarType.Int32).contiguous().data<int>().ToArray();
        return result;
    }
}
