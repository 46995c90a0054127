using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// A small convolutional classifier that stands in for the paper's CLIP / DINO teacher where those cannot be
/// downloaded (the Fashion-MNIST pipeline). Each stage is two 3×3 conv → BatchNorm → ReLU; a 2×2 max-pool sits
/// between stages, so the last stage's map has stride 2^(stages−1): with three stages on 28 px images that is
/// 7×7 at stride 4, the patch grid of a ViT with 4 px patches, and each of its cells is one patch's target.
/// JSON names are snake_case like the other configs.
/// </summary>
public sealed record ConvTeacherConfig
{
    /// <summary>Input side in pixels (a multiple of <see cref="PatchSize"/>).</summary>
    public int ImgSize { get; init; } = 28;
    public int InChans { get; init; } = 3;
    /// <summary>Channels of each stage; the last is the width of the targets.</summary>
    public IReadOnlyList<int> Widths { get; init; } = new[] { 32, 64, 128 };
    /// <summary>Classes of the head the teacher is trained with (global average pooling → dropout → linear).</summary>
    public int NumClasses { get; init; } = 10;
    public double DropoutRate { get; init; } = 0.2;
    /// <summary>
    /// What the teacher gives VQ-KD to regress per patch: <see cref="ClassEvidenceTargets"/> (default) the head applied to
    /// each cell of the last map (class-activation logits, whose mean over the cells is exactly the image's logits), or
    /// <see cref="FeatureTargets"/> the last map before its ReLU.
    /// </summary>
    public string Targets { get; init; } = ClassEvidenceTargets;

    public const string ClassEvidenceTargets = "class_evidence";
    public const string FeatureTargets = "features";

    /// <summary>The stride of the feature map: the patch size of the ViTs it teaches.</summary>
    [JsonIgnore] public int PatchSize => 1 << (Widths.Count - 1);
    [JsonIgnore] public int GridSize => ImgSize / PatchSize;
    /// <summary>Channels of the last map (the head's input).</summary>
    [JsonIgnore] public int FeatureDim => Widths[^1];
    /// <summary>Width of each per-patch target.</summary>
    [JsonIgnore] public int OutputDim => Targets == ClassEvidenceTargets ? NumClasses : FeatureDim;

    /// <summary>The teacher of the Fashion-MNIST pipeline: 28 px, widths 32/64/128 (0.29 M parameters).</summary>
    public static ConvTeacherConfig Fashion(int numClasses = 10) => new() { NumClasses = numClasses };

    /// <summary>
    /// A test-sized teacher: widths 16/16/16. No narrower: libtorch's CPU convolution backward reads uninitialised memory
    /// (the channel padding of oneDNN's blocked layout) for the input gradient of a 3×3 convolution whose output channels
    /// are not a multiple of 16 (AVX-512; 8 with AVX2), so widths 4/8 gave NaN gradients whenever the allocator handed
    /// back memory that had held NaN, which depended on what other threads had freed.
    /// </summary>
    public static ConvTeacherConfig Micro(int numClasses = 10) => new() { Widths = new[] { 16, 16, 16 }, NumClasses = numClasses };

    /// <exception cref="ArgumentException">a value is out of range.</exception>
    public ConvTeacherConfig Validate()
    {
        if (Widths is null || Widths.Count is < 1 or > 6 || Widths.Any(w => w is < 1 or > 4096))
            throw new ArgumentException("widths must list 1 to 6 stage widths in 1..4096.");
        if (ImgSize < PatchSize || ImgSize % PatchSize != 0 || ImgSize > 4096)
            throw new ArgumentException($"img_size must be a positive multiple of the feature stride {PatchSize} (at most 4096), got {ImgSize}.");
        if (InChans is < 1 or > 16) throw new ArgumentException($"in_chans must be in 1..16, got {InChans}.");
        if (NumClasses is < 1 or > 100_000) throw new ArgumentException($"num_classes must be in 1..100000, got {NumClasses}.");
        if (DropoutRate is < 0 or >= 1) throw new ArgumentException($"dropout_rate must be in [0, 1), got {DropoutRate}.");
        if (Targets is not (ClassEvidenceTargets or FeatureTargets))
            throw new ArgumentException($"targets must be \"{ClassEvidenceTargets}\" or \"{FeatureTargets}\", got \"{Targets}\".");
        return this;
    }
}
