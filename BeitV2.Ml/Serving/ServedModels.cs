using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Serving;

/// <summary>VQ-KD: token ids per patch, on pixels already mapped as its process_type maps them (see <see cref="VqkdPreProcess.Normalization"/>).</summary>
public sealed class ServedTokenizer : TorchServedModel
{
    private readonly VqkdTokenizer model;

    public ServedTokenizer(VqkdTokenizer model, ModelPreprocessing preprocessing) : base(model, preprocessing, model.Config.Encoder.ImgSize)
    {
        // Checked once here rather than on every batch (a device round trip).
        if (!model.Quantizer.Embedding.Initialised)
            throw new InvalidOperationException("The codebook was never initialised (initted = 0): train the tokenizer first or load trained weights.");
        this.model = model;
    }

    public override IReadOnlyList<ServedOperation> Operations { get; } = [ServedOperations.Tokens];

    protected override TokensResult[] Tokens(Tensor batch)
    {
        var ids = model.TokenIds(batch).cpu();
        return PerImage(ids, i => new TokensResult(ids[i].data<long>().ToArray()));
    }
}

/// <summary>The BEiT ViT (backbone or classifier): pooled features and, with a head, class probabilities.</summary>
public sealed class ServedVit(BeitVisionTransformer model, ModelPreprocessing preprocessing) : TorchServedModel(model, preprocessing, model.Config.ImgSize)
{
    public override IReadOnlyList<ServedOperation> Operations { get; } = model.Head is null
        ? [ServedOperations.Features]
        : [ServedOperations.Features, ServedOperations.Classify];

    protected override ClassProbabilities[] Classify(Tensor batch)
    {
        using var output = model.ForwardFeatures(batch);
        var probs = model.ForwardHead(output.Features).softmax(-1).cpu();
        // The pooled feature of the same pass, for the out-of-domain score (no second forward).
        var mean = Mean(output).cpu();
        return PerImage(probs, i => new ClassProbabilities(Row(probs, i), Row(mean, i)));
    }

    protected override FeaturesResult[] Features(Tensor batch)
    {
        using var output = model.ForwardFeatures(batch);
        // [CLS]: the last block's [CLS] after the final norm (identity for mean-pooling models).
        var cls = output.Tokens[.., 0].cpu();
        var mean = Mean(output).cpu();
        return PerImage(cls, i => new FeaturesResult(Row(cls, i), Row(mean, i)));
    }

    /// <summary>The head input for mean-pooling models (fc_norm of the patch mean), else the mean of the normed patch tokens.</summary>
    private Tensor Mean(VitOutput output) =>
        model.Config.UseMeanPooling ? output.Features : output.Tokens[.., 1..].mean(new long[] { 1 });
}

/// <summary>The MIM pretraining model as a feature extractor: its final normed [CLS] (trained by patch aggregation) and patch mean.</summary>
public sealed class ServedMim(BeitMim model, ModelPreprocessing preprocessing) : TorchServedModel(model, preprocessing, model.Config.ImgSize)
{
    public override IReadOnlyList<ServedOperation> Operations { get; } = [ServedOperations.Features];

    protected override FeaturesResult[] Features(Tensor batch)
    {
        using var f = model.ForwardFeatures(batch, null);
        var cls = f.Final[.., 0].cpu();
        var mean = f.Final[.., 1..].mean(new long[] { 1 }).cpu();
        return PerImage(cls, i => new FeaturesResult(Row(cls, i), Row(mean, i)));
    }
}

/// <summary>
/// UperNet segmentation: the whole image is resized to the model's size (the mask must cover all of it),
/// the decode head's logits are resized back to that size and arg-maxed; the endpoint maps the class map
/// onto the original image.
/// </summary>
public sealed class ServedSegmenter(BeitSegmenter model, ModelPreprocessing preprocessing)
    : TorchServedModel(model, preprocessing, model.Config.Backbone.ImgSize)
{
    public override IReadOnlyList<ServedOperation> Operations { get; } = [ServedOperations.Segment];

    protected override ClassMap[] Segment(Tensor batch)
    {
        var size = Preprocessing.InputSize;
        var (predicted, pooled) = model.PredictWithPooled(batch, (size, size));
        var classes = predicted.cpu();
        var feature = pooled.cpu();
        return PerImage(classes, i => new ClassMap(classes[i].to_type(ScalarType.Int32).contiguous().data<int>().ToArray(), size, size,
            Row(feature, i)));
    }
}
