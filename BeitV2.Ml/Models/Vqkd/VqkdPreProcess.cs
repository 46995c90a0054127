using BeitV2.Ml.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Vqkd;

/// <summary>The tokenizer's input mapping, usable without a tokenizer (e.g. to feed a teacher).</summary>
public static class VqkdPreProcess
{
    /// <summary>process_type 'default': ×255 when the whole batch's max is ≤ 1, then x/127.5 − 1.</summary>
    public static Tensor Default(Tensor images)
    {
        using var scope = NewDisposeScope();
        // Scalars held by `using` until the ops return: an implicitly converted one is left to the finalizer, which can free
        // it while the native op still reads it ("Unknown scalar type" in a pipeline run; dotnet/TorchSharp PR #1434).
        using var one = 1.0.ToScalar();
        using var full = 255.0.ToScalar();
        using var half = 127.5.ToScalar();
        // Compared as a tensor, so float64 (and uint8) batches work, not only float32.
        var x = images.max().le(one).item<bool>() ? images.mul(full) : images.alias();
        return x.div(half).sub(one).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <c>pre_process</c> of [0, 1] pixels as a normalisation applied to them directly, so that serving maps
    /// each pixel once (no batch maximum, no second pass): 'default' (×255, /127.5, −1) is mean = std = 0.5,
    /// equal to the last bit in float32 for all 256 values of u8/255; 'imagenet_norm' is ImageNet's mean/std;
    /// any other type passes the pixels through.
    /// </summary>
    public static PixelNormalization Normalization(string processType) => processType switch
    {
        "default" => PixelNormalization.Half,
        "imagenet_norm" => PixelNormalization.ImageNet,
        _ => PixelNormalization.Unit,
    };
}
