using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>
/// Configuration of the BEiT v2 semantic segmentation model (unilm beit2/semantic_segmentation:
/// the <c>BEiT</c> backbone of backbone/beit.py with its FPN necks, an mmseg 0.11 <c>UPerHead</c>
/// and an <c>FCNHead</c> auxiliary head, as configs/_base_/models/upernet_beit.py plus the
/// upernet_beit_{base,large} overrides). JSON names are snake_case like the other configs.
/// Property defaults are the base ADE20K recipe (<see cref="Base"/>).
/// </summary>
/// <remarks>
/// Of <see cref="Backbone"/> the segmentation backbone uses the transformer settings only:
/// <c>num_classes</c>, <c>use_mean_pooling</c> and <c>init_scale</c> are ignored (the backbone has
/// no head and no final norm). Only patch sizes 16 and 8 have necks in the reference; 4 and
/// <see cref="OutputStride"/> 2 are this library's extensions.
/// </remarks>
public sealed record SegmentationConfig
{
    /// <summary>The transformer (per-layer relative tables, layer scale; img_size 512 for ADE20K).</summary>
    public VitConfig Backbone { get; init; } = BaseBackbone();
    /// <summary>Blocks whose outputs feed the four necks (fpn1..fpn4), in increasing order.</summary>
    public IReadOnlyList<int> OutIndices { get; init; } = new[] { 3, 5, 7, 11 };
    /// <summary>Classes of both heads (150 for ADE20K with reduce_zero_label).</summary>
    public int NumClasses { get; init; } = 150;
    /// <summary>Width of the UPerHead (768 base, 1024 large).</summary>
    public int Channels { get; init; } = 768;
    /// <summary>Output sizes of the pyramid pooling module on the coarsest level.</summary>
    public IReadOnlyList<int> PoolScales { get; init; } = new[] { 1, 2, 3, 6 };
    /// <summary>Width of the FCN auxiliary head.</summary>
    public int AuxChannels { get; init; } = 256;
    /// <summary>Neck output (0..3) that feeds the auxiliary head.</summary>
    public int AuxInIndex { get; init; } = 2;
    /// <summary>Dropout2d before each head's conv_seg (both heads use 0.1 in the reference).</summary>
    public double DropoutRatio { get; init; } = 0.1;
    /// <summary>align_corners of every bilinear resize in the heads and of the loss/prediction resize.</summary>
    public bool AlignCorners { get; init; }
    /// <summary>Build the auxiliary FCN head (training only; the reference drops it at inference).</summary>
    public bool UseAuxHead { get; init; } = true;
    /// <summary>Weight of the auxiliary cross-entropy (decode head weight is 1).</summary>
    public double AuxLossWeight { get; init; } = 0.4;
    /// <summary>Label value excluded from the loss (mmseg default; ADE20K "other" after reduce_zero_label).</summary>
    public int IgnoreIndex { get; init; } = 255;

    /// <summary>
    /// Stride of the finest feature level, which is also the stride of the decode-head logits: 4 for the reference's
    /// necks (every patch size), or 2 for 4 px patches only, where fpn1 upsamples the patch grid 2× (ConvTranspose(2, 2)
    /// → BatchNorm → GELU, the first half of the reference's patch-16 fpn1) and the other levels move one step finer
    /// (strides 2, 4, 8, 16). With 4 px patches a 56 px image has a 14×14 grid, so the head then predicts at 28×28 instead
    /// of 14×14: thin parts (straps, sleeves, heels) are a pixel or two wide on that scale and vanish at 14×14.
    /// </summary>
    [JsonIgnore]
    public int OutputStride { get; init; } = DefaultOutputStride;

    /// <summary>JSON <c>output_stride</c>, written only when it is not the default 4, so the configs of before keep their exact JSON.</summary>
    [JsonInclude, JsonPropertyName("output_stride"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    private int? OutputStrideJson
    {
        get => OutputStride == DefaultOutputStride ? null : OutputStride;
        init => OutputStride = value ?? DefaultOutputStride;
    }

    /// <summary>The reference's output stride (every patch size).</summary>
    public const int DefaultOutputStride = 4;

    /// <summary>The base backbone of upernet_beit_base_12_512_slide_160k_ade20k (drop path 0.15, layer scale 0.1).</summary>
    public static VitConfig BaseBackbone() => VitConfig.Base(numClasses: 0) with { ImgSize = 512, DropPathRate = 0.15 };

    /// <summary>UperNet + BEiT v2 ViT-B/16 at 512 px: out_indices [3, 5, 7, 11], head width 768.</summary>
    public static SegmentationConfig Base(int numClasses = 150) => new()
    {
        Backbone = BaseBackbone(), OutIndices = new[] { 3, 5, 7, 11 }, NumClasses = numClasses, Channels = 768,
    };

    /// <summary>UperNet + BEiT v2 ViT-L/16 at 512 px: out_indices [7, 11, 15, 23], head width 1024, layer scale 1e-6, drop path 0.2.</summary>
    public static SegmentationConfig Large(int numClasses = 150) => new()
    {
        Backbone = VitConfig.Large(numClasses: 0) with { ImgSize = 512, InitValues = 1e-6, DropPathRate = 0.2 },
        OutIndices = new[] { 7, 11, 15, 23 }, NumClasses = numClasses, Channels = 1024,
    };

    /// <summary>
    /// A test-sized model: 64 px images with 16 px patches (4×4 grid, so the patch-16 necks are used),
    /// width 32, 4 blocks (all four feed the necks), head width 32, auxiliary width 16, no drop path.
    /// </summary>
    public static SegmentationConfig Micro(int numClasses = 5) => new()
    {
        Backbone = VitConfig.Base(numClasses: 0) with { ImgSize = 64, PatchSize = 16, EmbedDim = 32, Depth = 4, NumHeads = 2 },
        OutIndices = new[] { 0, 1, 2, 3 }, NumClasses = numClasses, Channels = 32, AuxChannels = 16,
    };

    /// <summary>
    /// The blocks that feed the four necks for a backbone of <paramref name="depth"/> blocks: the published
    /// configs' [3, 5, 7, 11] at 12 blocks (upernet_beit_base_12_*) and [7, 11, 15, 23] at 24
    /// (upernet_beit_large_24_*); the reference has no other depth, so otherwise the last block that
    /// ends within each quarter of the depth (what the bundled 6-block segmenter was trained with: [0, 2, 3, 5]).
    /// </summary>
    public static IReadOnlyList<int> DefaultOutIndices(int depth) => depth switch
    {
        < 4 => throw new ArgumentException($"A segmentation backbone needs at least 4 blocks (one per neck); this one has {depth}."),
        12 => new[] { 3, 5, 7, 11 },
        24 => new[] { 7, 11, 15, 23 },
        _ => new[] { depth / 4 - 1, depth / 2 - 1, 3 * depth / 4 - 1, depth - 1 },
    };

    /// <summary>
    /// A segmenter on <paramref name="backbone"/> (its transformer settings; the head and classes are dropped)
    /// with the small heads of <see cref="Micro"/> and the necks fed per <see cref="DefaultOutIndices"/>.
    /// </summary>
    public static SegmentationConfig FromBackbone(VitConfig backbone, int numClasses) => Micro(numClasses) with
    {
        Backbone = backbone with { NumClasses = 0 },
        OutIndices = DefaultOutIndices(backbone.Depth),
    };

    /// <summary>
    /// Necks exist for 16 and 8 px patches (the reference) and 4 px patches (ours); output stride 2 only for 4 px patches.
    /// The coarsest level has stride 8 × output stride (32 by default), so the image must be at least that many pixels.
    /// </summary>
    public static void ValidatePatchSize(VitConfig backbone, int outputStride = DefaultOutputStride)
    {
        VitConfig.Require(backbone.PatchSize is 16 or 8 or 4,
            $"patch_size {backbone.PatchSize}: the segmentation backbone defines necks for patch sizes 16 and 8 (the reference) and 4");
        VitConfig.Require(outputStride == DefaultOutputStride || (outputStride == 2 && backbone.PatchSize == 4),
            $"output_stride {outputStride}: the necks give stride 4 (the reference's layout), or 2 with 4 px patches (fpn1 upsamples the patch grid 2×); " +
            $"this backbone has {backbone.PatchSize} px patches");
        var coarsest = 8 * outputStride;
        VitConfig.Require(backbone.ImgSize >= coarsest,
            $"img_size {backbone.ImgSize}: the segmentation backbone's coarsest feature level has stride {coarsest}, so images must be at least {coarsest} px");
    }

    /// <summary>Throws a clear error for configs the reference cannot build or run.</summary>
    public void Validate()
    {
        VitConfig.Require(Backbone is not null, "backbone is required");
        Backbone!.Validate();
        ValidatePatchSize(Backbone, OutputStride);
        VitConfig.Require(OutIndices is { Count: 4 },
            "out_indices must name exactly 4 blocks (one per neck; UPerHead uses in_index [0, 1, 2, 3])");
        ValidateOutIndices(OutIndices, Backbone.Depth);
        VitConfig.Require(NumClasses > 0, "num_classes must be positive");
        VitConfig.Require(Channels > 0 && AuxChannels > 0, "channels and aux_channels must be positive");
        VitConfig.Require(PoolScales is { Count: > 0 } && PoolScales.All(s => s > 0), "pool_scales must be a non-empty list of positive sizes");
        VitConfig.Require(AuxInIndex is >= 0 and < 4, $"aux_in_index {AuxInIndex} must be in 0..3");
        VitConfig.Require(DropoutRatio is >= 0 and < 1, "dropout_ratio must be in [0, 1)");
        VitConfig.Require(AuxLossWeight >= 0, "aux_loss_weight must be >= 0");
    }

    /// <summary>Strictly increasing block indices within the depth (duplicates would silently drop a level in the reference).</summary>
    internal static void ValidateOutIndices(IReadOnlyList<int> outIndices, int depth)
    {
        VitConfig.Require(outIndices is { Count: >= 1 and <= 4 }, "out_indices must name 1 to 4 blocks");
        for (var i = 0; i < outIndices.Count; i++)
        {
            VitConfig.Require(outIndices[i] >= 0 && outIndices[i] < depth, $"out_indices entry {outIndices[i]} is not a block index (depth {depth})");
            VitConfig.Require(i == 0 || outIndices[i] > outIndices[i - 1], "out_indices must be strictly increasing");
        }
    }

    // Value equality for the list members (a record compares them by reference otherwise).
    public bool Equals(SegmentationConfig? other) =>
        other is not null
        && Backbone == other.Backbone
        && OutIndices.SequenceEqual(other.OutIndices)
        && NumClasses == other.NumClasses
        && Channels == other.Channels
        && PoolScales.SequenceEqual(other.PoolScales)
        && AuxChannels == other.AuxChannels
        && AuxInIndex == other.AuxInIndex
        && DropoutRatio.Equals(other.DropoutRatio)
        && AlignCorners == other.AlignCorners
        && UseAuxHead == other.UseAuxHead
        && AuxLossWeight.Equals(other.AuxLossWeight)
        && IgnoreIndex == other.IgnoreIndex
        && OutputStride == other.OutputStride;

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Backbone);
        foreach (var i in OutIndices) h.Add(i);
        h.Add(NumClasses);
        h.Add(Channels);
        foreach (var s in PoolScales) h.Add(s);
        h.Add(AuxChannels);
        h.Add(AuxInIndex);
        h.Add(DropoutRatio);
        h.Add(AlignCorners);
        h.Add(UseAuxHead);
        h.Add(AuxLossWeight);
        h.Add(IgnoreIndex);
        h.Add(OutputStride);
        return h.ToHashCode();
    }
}
