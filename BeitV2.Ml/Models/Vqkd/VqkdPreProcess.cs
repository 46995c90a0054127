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
        var x = images.max().item<float>() <= 1f ? images * 255.0 : images.alias();
        return (x / 127.5 - 1.0).MoveToOuterDisposeScope();
    }
}
