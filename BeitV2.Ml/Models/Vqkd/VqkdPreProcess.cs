using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Vqkd;

/// <summary>The tokenizer's input mapping, usable without a tokenizer (e.g. to feed a teacher).</summary>
public static class VqkdPreProcess
{
    /// <summary>process_type 'default': ×255 when the whole batch's max is ≤ 1, then x/127.5 − 1.</summary>
    public static Tensor Default(Tensor images)
    {
        using var scope = NewDisposeScope();
        // Compared as a tensor, so float64 (and uint8) batches work, not only float32.
        var x = images.max().le(1.0).item<bool>() ? images * 255.0 : images.alias();
        return (x / 127.5 - 1.0).MoveToOuterDisposeScope();
    }
}
