using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>The CLIP image tower's constructor arguments (<c>VisionTransformer(input_resolution, patch_size, width, layers, heads, output_dim)</c>).</summary>
public sealed record ClipVisionConfig
{
    public int InputResolution { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int Width { get; init; } = 768;
    public int Layers { get; init; } = 12;
    public int Heads { get; init; } = 12;
    public int OutputDim { get; init; } = 512;
    /// <summary>CLIP's LayerNorm always uses PyTorch's default 1e-5.</summary>
    public double NormEps { get; init; } = 1e-5;

    /// <summary>CLIP ViT-B/16, the VQ-KD default teacher.</summary>
    public static ClipVisionConfig ViTB16() => new();

    /// <summary>Infers the tower's shape from official weights, as CLIP's <c>build_model</c> does (heads = width / 64).</summary>
    /// <param name="visual">the image tower's weights, without the <c>visual.</c> prefix.</param>
    /// <exception cref="CheckpointException">the weights are not those of a CLIP image tower.</exception>
    public static ClipVisionConfig FromStateDict(IReadOnlyDictionary<string, Tensor> visual)
    {
        var lacking = new[] { "conv1.weight", "positional_embedding", "proj" }.Where(k => !visual.ContainsKey(k)).ToList();
        if (lacking.Count > 0)
            throw new CheckpointException(
                $"Cannot infer the CLIP image tower's shape: the checkpoint has no {string.Join(", ", lacking.Select(k => "visual." + k))}. " +
                "Expected an OpenAI CLIP file (keys 'visual.*') or a VQ-KD checkpoint with a CLIP teacher ('teacher_model.visual.*').");
        var conv = visual["conv1.weight"];
        var width = (int)conv.shape[0];
        var patch = (int)conv.shape[^1];
        var layers = visual.Keys.Count(k => k.StartsWith("transformer.resblocks.", StringComparison.Ordinal) && k.EndsWith(".attn.in_proj_weight", StringComparison.Ordinal));
        var grid = (int)Math.Round(Math.Sqrt(visual["positional_embedding"].shape[0] - 1));
        return new ClipVisionConfig
        {
            InputResolution = patch * grid, PatchSize = patch, Width = width, Layers = layers,
            Heads = width / 64, OutputDim = (int)visual["proj"].shape[1],
        };
    }
}
