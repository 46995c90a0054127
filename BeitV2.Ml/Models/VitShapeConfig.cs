using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models;

/// <summary>
/// The constructor arguments every vision transformer here shares (the ViT of DINO and the BEiT trunk alike, as
/// timm's <c>VisionTransformer</c> and <c>Beit</c>): image and patch size, width, depth, heads, MLP ratio, qkv bias,
/// dropouts and the LayerNorm eps. JSON names are the reference keyword arguments (snake_case).
/// </summary>
/// <remarks>
/// JSON order is explicit so that manifests written before the configs shared this base keep their exact text:
/// 0–13 here (3 is the derived config's own size: <c>num_classes</c> or <c>vocab_size</c>), 14–18 in
/// <see cref="VitTrunkConfig"/>, 19–29 for the derived config's own settings, 30 for <c>use_checkpoint</c>.
/// (System.Text.Json would otherwise write a derived record's properties before its base's.)
/// </remarks>
public abstract record VitShapeConfig
{
    [JsonConverter(typeof(IntOrFirstOfListConverter))]
    [JsonPropertyOrder(0)] public int ImgSize { get; init; } = 224;
    [JsonPropertyOrder(1)] public int PatchSize { get; init; } = 16;
    [JsonPropertyOrder(2)] public int InChans { get; init; } = 3;
    [JsonPropertyOrder(4)] public int EmbedDim { get; init; } = 768;
    [JsonPropertyOrder(5)] public int Depth { get; init; } = 12;
    [JsonPropertyOrder(6)] public int NumHeads { get; init; } = 12;
    [JsonPropertyOrder(7)] public double MlpRatio { get; init; } = 4.0;
    /// <summary>Off by default as in the BEiT fine-tuning class; the MIM and DINO configs turn it on.</summary>
    [JsonPropertyOrder(8)] public bool QkvBias { get; init; }
    [JsonPropertyOrder(9)] public double? QkScale { get; init; }
    [JsonPropertyOrder(10)] public double DropRate { get; init; }
    [JsonPropertyOrder(11)] public double AttnDropRate { get; init; }
    [JsonPropertyOrder(12)] public double DropPathRate { get; init; }
    [JsonPropertyOrder(13)] public double NormEps { get; init; } = 1e-6;

    [JsonIgnore] public int GridSize => ImgSize / PatchSize;
    [JsonIgnore] public int NumPatches => GridSize * GridSize;

    /// <summary>Throws the error every config validation uses for a setting the reference would reject or mis-build.</summary>
    internal static void Require(bool ok, string message)
    {
        if (!ok) throw new ArgumentException("Invalid model config: " + message);
    }
}
