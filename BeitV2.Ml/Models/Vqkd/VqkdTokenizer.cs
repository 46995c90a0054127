using BeitV2.Ml.Models.Layers;
using BeitV2.Ml.Models.Teachers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Vqkd;

/// <summary>The encoding path's tensors.</summary>
/// <param name="Quantized">straight-through code vectors, (B, D, h, w).</param>
/// <param name="Indices">token ids, (B, h·w), row-major patch order.</param>
/// <param name="CommitLoss">β·mse(z_q, l2norm(z)).</param>
/// <param name="EncoderOut">fc_norm of the encoder's patch tokens, (B, N, C).</param>
/// <param name="EncodeTaskOut">task-layer output before l2 normalisation, (B, N, D).</param>
/// <param name="EncoderHidden">encoder block outputs when requested.</param>
public sealed record VqkdEncoding(Tensor Quantized, Tensor Indices, Tensor CommitLoss, Tensor EncoderOut, Tensor EncodeTaskOut,
    IReadOnlyList<Tensor> EncoderHidden) : IDisposable
{
    public void Dispose()
    {
        foreach (var t in new[] { Quantized, Indices, CommitLoss, EncoderOut, EncodeTaskOut }.Concat(EncoderHidden)) t.Dispose();
    }
}

/// <summary>A full VQ-KD forward: encoding, reconstruction and the two loss terms.</summary>
public sealed record VqkdOutput(Tensor ImagesPre, VqkdEncoding Encoding, Tensor DecoderFeatures, Tensor Reconstruction,
    IReadOnlyList<Tensor> DecoderHidden, Tensor RecLoss, Tensor Loss) : IDisposable
{
    public void Dispose()
    {
        Encoding.Dispose();
        foreach (var t in new[] { ImagesPre, DecoderFeatures, Reconstruction, RecLoss, Loss }.Concat(DecoderHidden)) t.Dispose();
    }
}

/// <summary>
/// The VQ-KD visual tokenizer (unilm <c>modeling_vqkd.VQKD</c>): ViT encoder → Linear-Tanh-Linear
/// to the code dimension → normalised EMA quantizer → ViT decoder on the code map →
/// Linear-Tanh-Linear to the teacher's width; trained to maximise the cosine similarity with a
/// frozen teacher's patch features. After training only the encoding path is needed to produce
/// visual tokens. The teacher is not part of this module (nor of its state dict): pass one to
/// <see cref="Forward(Tensor, IVqkdTeacher, bool)"/> or supply targets.
/// </summary>
public sealed class VqkdTokenizer : ExplicitModule<Tensor, Tensor>
{
    private readonly BeitVisionTransformer encoder;
    private readonly BeitVisionTransformer decoder;
    private readonly NormEmaVectorQuantizer quantize;
    private readonly Sequential encodeTaskLayer;
    private readonly Sequential decodeTaskLayer;

    public VqkdConfig Config { get; }

    public VqkdTokenizer(VqkdConfig config) : base(nameof(VqkdTokenizer))
    {
        config = config with { Encoder = config.Encoder with { NumClasses = 0 }, Decoder = config.Decoder with { NumClasses = 0 } };
        config.Validate();
        Config = config;
        encoder = new BeitVisionTransformer(config.Encoder);
        decoder = new BeitVisionTransformer(config.Decoder);
        quantize = new NormEmaVectorQuantizer(config.NEmbed, config.EmbedDim, config.Decay, config.QuantizeKmeansInit);
        long e = config.Encoder.EmbedDim, d = config.Decoder.EmbedDim;
        encodeTaskLayer = nn.Sequential(("0", nn.Linear(e, e)), ("1", nn.Tanh()), ("2", nn.Linear(e, config.EmbedDim)));
        decodeTaskLayer = nn.Sequential(("0", nn.Linear(d, d)), ("1", nn.Tanh()), ("2", nn.Linear(d, config.DecoderOutDim)));
        register_module("encoder", encoder);
        register_module("decoder", decoder);
        register_module("quantize", quantize);
        register_module("encode_task_layer", encodeTaskLayer);
        register_module("decode_task_layer", decodeTaskLayer);
        InitTaskLayers();
    }

    public BeitVisionTransformer Encoder => encoder;
    public BeitVisionTransformer Decoder => decoder;
    public NormEmaVectorQuantizer Quantizer => quantize;
    public int VocabSize => Config.NEmbed;

    /// <summary>Token ids of images in [0, 1] (or [0, 255]): (B, h·w) int64.</summary>
    public override Tensor forward(Tensor images) => GetCodebookIndices(images);

    /// <summary>get_codebook_indices: token ids (B, h·w), row-major, same order as the ViT patch sequence.</summary>
    public Tensor GetCodebookIndices(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var encoding = Encode(PreProcess(images));
        return encoding.Indices.clone().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The reference <c>pre_process</c>. 'default': when the whole batch's maximum is ≤ 1 the data
    /// are multiplied by 255 first; then x/127.5 − 1, giving [−1, 1].
    /// </summary>
    public Tensor PreProcess(Tensor images)
    {
        using var scope = NewDisposeScope();
        Tensor x;
        switch (Config.ProcessType)
        {
            case "default":
                x = VqkdPreProcess.Default(images);
                break;
            case "imagenet_norm":
                var mean = tensor(ScalingLayer.ImageNetMean, device: images.device).view(1, 3, 1, 1);
                var std = tensor(ScalingLayer.ImageNetStd, device: images.device).view(1, 3, 1, 1);
                x = (images - mean) / std;
                break;
            default:
                x = images.alias();
                break;
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Token ids (B, h·w) of images already mapped to the encoder's input (what <see cref="PreProcess"/> returns),
    /// the same ids as <see cref="GetCodebookIndices"/> but without its state writes: no usage statistic
    /// (the reference's eval forward updates <c>cluster_size</c>), no batch maximum. The serving path; the
    /// caller checks once that the codebook is initialised.
    /// </summary>
    public Tensor TokenIds(Tensor imagesPre)
    {
        using var scope = NewDisposeScope();
        var (_, _, _, map) = EncodeToCodeSpace(imagesPre, keepHidden: false);
        return quantize.NearestCodes(map).view(map.shape[0], -1).MoveToOuterDisposeScope();
    }

    /// <summary>Encoder → task layer → quantizer on pre-processed images.</summary>
    public VqkdEncoding Encode(Tensor imagesPre, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var (features, encoderOut, taskOut, map) = EncodeToCodeSpace(imagesPre, keepHidden);
        var q = quantize.forward(map);
        var result = new VqkdEncoding(q.Quantized, q.Indices.view(map.shape[0], -1), q.Loss, encoderOut, taskOut, features.Hidden);
        foreach (var t in new[] { result.Quantized, result.Indices, result.CommitLoss, result.EncoderOut, result.EncodeTaskOut }.Concat(result.EncoderHidden))
            t.MoveToOuterDisposeScope();
        return result;
    }

    // Encoder → fc_norm'd patch tokens → task layer → (B, D, h, w) map, in the caller's dispose scope.
    private (VitOutput Features, Tensor EncoderOut, Tensor TaskOut, Tensor Map) EncodeToCodeSpace(Tensor imagesPre, bool keepHidden)
    {
        var features = encoder.ForwardFeatures(imagesPre, keepHidden);
        var encoderOut = encoder.ForwardPatchTokensFrom(features);
        // The reference runs the task layer with autocast off, on input cast to the layer's own dtype
        // (type_as(encode_task_layer[-1].weight)): float32 normally, float64 after to(float64).
        var taskOut = encodeTaskLayer.forward(encoderOut.to_type(get_parameter("encode_task_layer.2.weight")!.dtype));
        long b = taskOut.shape[0], n = taskOut.shape[1];
        int gh = (int)imagesPre.shape[2] / Config.Encoder.PatchSize, gw = (int)imagesPre.shape[3] / Config.Encoder.PatchSize;
        if (gh * gw != n) throw new InvalidOperationException($"Token count {n} does not match the {gh}x{gw} grid.");
        return (features, encoderOut, taskOut, taskOut.transpose(1, 2).reshape(b, -1, gh, gw));
    }

    /// <summary>Decoder on the code map → task layer: (reconstruction (B, N, out), decoder patch features (B, N, C), decoder block outputs).</summary>
    public (Tensor Reconstruction, Tensor Features, IReadOnlyList<Tensor> Hidden) Decode(Tensor quantized, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var output = decoder.ForwardFeatures(quantized, keepHidden);
        var features = decoder.ForwardPatchTokensFrom(output);
        var rec = decodeTaskLayer.forward(features);
        foreach (var t in output.Hidden.Append(features).Append(rec)) t.MoveToOuterDisposeScope();
        return (rec, features, output.Hidden);
    }

    /// <summary>The training forward against a teacher: loss = commitment + cosine reconstruction.</summary>
    public VqkdOutput Forward(Tensor images, IVqkdTeacher teacher, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var pre = PreProcess(images);
        var targets = teacher.GetRegressTarget(pre);
        var output = ForwardWithTargets(pre, targets, keepHidden, alreadyPreprocessed: true);
        output.MoveAllToOuter();
        return output;
    }

    /// <summary>The training forward with caller-supplied teacher targets (B, N, decoder_out_dim).</summary>
    public VqkdOutput Forward(Tensor images, Tensor targets, bool keepHidden = false) =>
        ForwardWithTargets(images, targets, keepHidden, alreadyPreprocessed: false);

    private VqkdOutput ForwardWithTargets(Tensor images, Tensor targets, bool keepHidden, bool alreadyPreprocessed)
    {
        using var scope = NewDisposeScope();
        var pre = alreadyPreprocessed ? images.alias() : PreProcess(images);
        var encoding = Encode(pre, keepHidden);
        var (rec, features, hidden) = Decode(encoding.Quantized, keepHidden);
        var recLoss = CosineLoss(rec, targets);
        var loss = encoding.CommitLoss + recLoss;
        var output = new VqkdOutput(pre, encoding, features, rec, hidden, recLoss, loss);
        output.MoveAllToOuter();
        return output;
    }

    /// <summary>mean over tokens of 1 − cos(target, reconstruction); plain division by the norms, as in the reference.</summary>
    public static Tensor CosineLoss(Tensor reconstruction, Tensor target)
    {
        using var scope = NewDisposeScope();
        var t = target / target.norm(-1, keepdim: true);
        var r = reconstruction / reconstruction.norm(-1, keepdim: true);
        var loss = (1 - (t * r).sum(-1)).mean();
        return loss.MoveToOuterDisposeScope();
    }

    private void InitTaskLayers()
    {
        using var _ = no_grad();
        foreach (var seq in new[] { encodeTaskLayer, decodeTaskLayer })
            foreach (var (_, m) in seq.named_modules())
                if (m is Linear lin)
                {
                    TruncatedNormal.Fill_(lin.weight!, 0, 0.02, -2, 2);
                    nn.init.zeros_(lin.bias!);
                }
    }
}

internal static class VqkdOutputExtensions
{
    public static void MoveAllToOuter(this VqkdOutput o)
    {
        var e = o.Encoding;
        foreach (var t in new[] { o.ImagesPre, o.DecoderFeatures, o.Reconstruction, o.RecLoss, o.Loss, e.Quantized, e.Indices, e.CommitLoss, e.EncoderOut, e.EncodeTaskOut }
                     .Concat(o.DecoderHidden).Concat(e.EncoderHidden))
            t.MoveToOuterDisposeScope();
    }
}
