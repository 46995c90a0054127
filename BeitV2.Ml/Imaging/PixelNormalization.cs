namespace BeitV2.Ml.Imaging;

/// <summary>
/// Per-channel mean and standard deviation for <c>(x - mean) / std</c> on [0,1] RGB values, as in
/// torchvision's <c>Normalize</c>. Which statistics a checkpoint expects depends on how it was
/// trained, so they are configuration, not constants of the transform.
/// </summary>
/// <remarks>
/// The values are kept as double and narrowed with a (float) cast at use, because torchvision
/// builds its float32 mean/std tensors from Python floats (doubles). That narrowing can differ by
/// one ulp from a C# float literal of the same decimal, which would break bit-exactness.
/// </remarks>
public sealed record PixelNormalization(double MeanR, double MeanG, double MeanB, double StdR, double StdG, double StdB)
{
    /// <summary>ImageNet statistics (timm's IMAGENET_DEFAULT_MEAN/STD); used by the fixtures and
    /// by the fine-tuning script with <c>--imagenet_default_mean_and_std</c>.</summary>
    public static PixelNormalization ImageNet { get; } = new(0.485, 0.456, 0.406, 0.229, 0.224, 0.225);

    /// <summary>mean = std = 0.5 (timm's IMAGENET_INCEPTION_MEAN/STD): the BEiT v2 fine-tuning
    /// script's default when <c>--imagenet_default_mean_and_std</c> is not given.</summary>
    public static PixelNormalization Half { get; } = new(0.5, 0.5, 0.5, 0.5, 0.5, 0.5);

    /// <summary>mean 0, std 1: the [0, 1] pixels unchanged (a VQ-KD tokenizer whose process_type maps nothing).</summary>
    public static PixelNormalization Unit { get; } = new(0, 0, 0, 1, 1, 1);

    /// <summary>OpenAI CLIP statistics (the CLIP teacher's own preprocessing).</summary>
    public static PixelNormalization Clip { get; } =
        new(0.48145466, 0.4578275, 0.40821073, 0.26862954, 0.26130258, 0.27577711);

    /// <summary>Means as float32, in R,G,B order.</summary>
    public float[] MeanF32() => [(float)MeanR, (float)MeanG, (float)MeanB];

    /// <summary>Standard deviations as float32, in R,G,B order; throws on a zero or non-finite one.</summary>
    public float[] StdF32()
    {
        float[] std = [(float)StdR, (float)StdG, (float)StdB];
        foreach (var s in std)
            if (s == 0f || !float.IsFinite(s))
                throw new InvalidOperationException($"Invalid normalisation std {s} in {this}.");
        return std;
    }
}
