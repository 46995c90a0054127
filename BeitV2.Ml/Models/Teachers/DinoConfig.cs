using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models.Layers;
using System.Text.Json.Serialization;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>The DINO ViT constructor arguments (unilm <c>vqkd_teacher/dino.py</c>) plus the LayerNorm eps.</summary>
public sealed record DinoConfig : VitShapeConfig
{
    /// <summary>DINO's ViT has qkv biases by default.</summary>
    public DinoConfig() => QkvBias = true;

    [JsonPropertyOrder(3)] public int NumClasses { get; init; }

    /// <summary>DINO ViT-B/16 (dino_vitbase16_pretrain), the alternative VQ-KD teacher.</summary>
    public static DinoConfig ViTB16() => new();

    /// <summary>Infers the shape from official weights (heads = dim / 64, as for ViT-S/B).</summary>
    /// <exception cref="CheckpointException">the weights are not those of a DINO ViT.</exception>
    public static DinoConfig FromStateDict(IReadOnlyDictionary<string, Tensor> sd)
    {
        var lacking = new[] { "pos_embed", "patch_embed.proj.weight" }.Where(k => !sd.ContainsKey(k)).ToList();
        if (lacking.Count > 0)
            throw new CheckpointException(
                $"Cannot infer the DINO ViT's shape: the checkpoint has no {string.Join(", ", lacking)}. " +
                "Expected a DINO backbone file (e.g. dino_vitbase16_pretrain.pth) or a VQ-KD checkpoint with a DINO teacher ('teacher_model.*').");
        var dim = (int)sd["pos_embed"].shape[2];
        var patch = (int)sd["patch_embed.proj.weight"].shape[^1];
        var depth = sd.Keys.Count(k => k.StartsWith("blocks.", StringComparison.Ordinal) && k.EndsWith(".attn.qkv.weight", StringComparison.Ordinal));
        var grid = (int)Math.Round(Math.Sqrt(sd["pos_embed"].shape[1] - 1));
        return new DinoConfig
        {
            ImgSize = grid * patch, PatchSize = patch, EmbedDim = dim, Depth = depth, NumHeads = Math.Max(1, dim / 64),
            QkvBias = sd.ContainsKey("blocks.0.attn.qkv.bias"),
            NumClasses = sd.TryGetValue("head.weight", out var h) ? (int)h.shape[0] : 0,
        };
    }
}
