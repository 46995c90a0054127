using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models;

/// <summary>
/// Configuration of the BEiT v2 masked-image-modeling model with patch aggregation
/// (<c>modeling_pretrain.VisionTransformerForMaskedImageModelingCLS</c>): its keyword arguments
/// plus <c>norm_eps</c>. Defaults are the class defaults.
/// </summary>
public sealed record MimConfig : VitTrunkConfig
{
    /// <summary>The reference MIM class builds qkv biases unless told otherwise (the fine-tuning class does not).</summary>
    public MimConfig() => QkvBias = true;

    [JsonPropertyOrder(3)] public int VocabSize { get; init; } = 8192;
    [JsonPropertyOrder(19)] public double InitStd { get; init; } = 0.02;
    /// <summary>Blocks after which the patch states feed the aggregation head (9 for base, 21 for large).</summary>
    [JsonPropertyOrder(20)] public int EarlyLayers { get; init; } = 6;
    /// <summary>Blocks in the aggregation head (2 in the published recipe).</summary>
    [JsonPropertyOrder(21)] public int HeadLayers { get; init; } = 2;
    /// <summary>When true the head reuses the final norm and lm_head; otherwise it has cls_pt_norm/cls_pt_lm_head.</summary>
    [JsonPropertyOrder(22)] public bool SharedLmHead { get; init; } = true;

    /// <summary>beit_base_patch16_224_8k_vocab_cls_pt as run by PRETRAINING.md.</summary>
    public static MimConfig Base() => new()
    {
        ImgSize = 224, PatchSize = 16, VocabSize = 8192, EmbedDim = 768, Depth = 12, NumHeads = 12,
        QkvBias = true, InitValues = 0.1, UseAbsPosEmb = false, UseSharedRelPosBias = true,
        EarlyLayers = 9, HeadLayers = 2, SharedLmHead = true, DropPathRate = 0.1,
    };

    /// <summary>beit_large_patch16_224_8k_vocab_cls_pt.</summary>
    public static MimConfig Large() => Base() with { EmbedDim = 1024, Depth = 24, NumHeads = 16, InitValues = 1e-5, EarlyLayers = 21 };

    /// <summary>ViT-Ti-sized MIM model for demos.</summary>
    public static MimConfig Tiny(int vocabSize = 8192) => Base() with { EmbedDim = 192, Depth = 12, NumHeads = 3, VocabSize = vocabSize };

    /// <summary>The MIM model of <see cref="VitConfig.Small"/>: aggregation from block 4 of 6 into a 2-block head (Base: 9 of 12).</summary>
    public static MimConfig Small(int vocabSize = 512) => Base() with
    {
        ImgSize = 28, PatchSize = 4, EmbedDim = 96, Depth = 6, NumHeads = 3, VocabSize = vocabSize, EarlyLayers = 4, HeadLayers = 2,
        DropPathRate = 0.05,
    };

    /// <summary>Test-sized MIM model: 32 px, 8 px patches, 4 blocks, aggregation after block 2.</summary>
    public static MimConfig Micro(int vocabSize = 32) => Base() with
    {
        ImgSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 4, NumHeads = 2, VocabSize = vocabSize, EarlyLayers = 2, HeadLayers = 1, DropPathRate = 0,
    };

    /// <summary>The fine-tuning backbone config that a checkpoint of this model converts into (as unilm beit2/run_class_finetuning.py loads a pretraining checkpoint).</summary>
    public VitConfig ToBackbone(int numClasses) => new()
    {
        ImgSize = ImgSize, PatchSize = PatchSize, InChans = InChans, NumClasses = numClasses, EmbedDim = EmbedDim,
        Depth = Depth, NumHeads = NumHeads, MlpRatio = MlpRatio, QkvBias = QkvBias, QkScale = QkScale,
        NormEps = NormEps, InitValues = InitValues, AttnHeadDim = AttnHeadDim, UseAbsPosEmb = UseAbsPosEmb,
        UseRelPosBias = true, UseSharedRelPosBias = false, UseMeanPooling = true,
    };

    public override void Validate()
    {
        ValidateTrunk();
        Require(VocabSize > 0, "sizes must be positive");
        Require(EarlyLayers >= 1 && EarlyLayers <= Depth, $"early_layers {EarlyLayers} must be in 1..depth ({Depth})");
        Require(HeadLayers >= 0, "head_layers must be >= 0");
    }
}
