using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models;

/// <summary>
/// The settings of the BEiT trunk (<see cref="VitTrunk"/>) beyond the transformer's shape: layer scale, the
/// attention head width, which position encodings exist (absolute embedding, per-layer or shared relative bias)
/// and the reference's gradient checkpointing flag. The base of <see cref="VitConfig"/> (classifier, VQ-KD
/// encoder/decoder, segmentation backbone) and <see cref="MimConfig"/> (pretraining): the keyword arguments the
/// unilm <c>VisionTransformer</c> and <c>VisionTransformerForMaskedImageModelingCLS</c> have in common.
/// </summary>
public abstract record VitTrunkConfig : VitShapeConfig
{
    /// <summary>Layer scale init; layer-scale parameters exist only when &gt; 0.</summary>
    [JsonPropertyOrder(14)] public double InitValues { get; init; }
    [JsonPropertyOrder(15)] public int? AttnHeadDim { get; init; }
    [JsonPropertyOrder(16)] public bool UseAbsPosEmb { get; init; } = true;
    [JsonPropertyOrder(17)] public bool UseRelPosBias { get; init; }
    [JsonPropertyOrder(18)] public bool UseSharedRelPosBias { get; init; }
    /// <summary>Gradient checkpointing in the reference; memory only, no numerical effect. Accepted and ignored.</summary>
    [JsonPropertyOrder(30)] public bool UseCheckpoint { get; init; }

    /// <summary>Throws a clear error for a config the reference itself would reject or mis-build (the trunk checks it when built).</summary>
    public abstract void Validate();

    /// <summary>The checks every trunk needs; <see cref="Validate"/> of the derived configs adds their own.</summary>
    protected void ValidateTrunk()
    {
        Require(ImgSize > 0 && PatchSize > 0 && ImgSize % PatchSize == 0, $"img_size {ImgSize} must be a positive multiple of patch_size {PatchSize}");
        Require(InChans > 0 && EmbedDim > 0 && Depth >= 0 && NumHeads > 0, "sizes must be positive");
        Require(AttnHeadDim is not null || EmbedDim % NumHeads == 0, $"embed_dim {EmbedDim} must be divisible by num_heads {NumHeads}");
        Require(MlpRatio > 0, "mlp_ratio must be positive");
        Require(DropPathRate is >= 0 and < 1 && DropRate is >= 0 and < 1 && AttnDropRate is >= 0 and < 1, "dropout rates must be in [0, 1)");
        Require(NormEps > 0, "norm_eps must be positive");
    }
}
