using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models;

/// <summary>
/// Configuration of the BEiT (v2) vision transformer used for fine-tuning, classification,
/// feature extraction and as the VQ-KD encoder/decoder: the keyword arguments of
/// <c>modeling_finetune.VisionTransformer</c> in microsoft/unilm beit2, plus <c>norm_eps</c>
/// (the LayerNorm eps the registered models pass through <c>norm_layer</c>).
/// Defaults are the reference class defaults (not the presets): e.g. qkv_bias is off and the
/// absolute position embedding is on unless a caller says otherwise.
/// </summary>
public sealed record VitConfig : VitTrunkConfig
{
    /// <summary>0 means no head (features only).</summary>
    [JsonPropertyOrder(3)] public int NumClasses { get; init; } = 1000;
    [JsonPropertyOrder(19)] public bool UseMeanPooling { get; init; } = true;
    [JsonPropertyOrder(20)] public double InitScale { get; init; } = 0.001;

    /// <summary>BEiT v2 ViT-B/16 as fine-tuned by unilm (per-layer relative bias, mean pooling, layer scale 0.1).</summary>
    public static VitConfig Base(int numClasses = 1000) => new()
    {
        ImgSize = 224, PatchSize = 16, NumClasses = numClasses, EmbedDim = 768, Depth = 12, NumHeads = 12,
        QkvBias = true, InitValues = 0.1, UseAbsPosEmb = false, UseRelPosBias = true, UseMeanPooling = true,
    };

    /// <summary>BEiT v2 ViT-L/16 (layer scale 1e-5).</summary>
    public static VitConfig Large(int numClasses = 1000) => Base(numClasses) with
    {
        EmbedDim = 1024, Depth = 24, NumHeads = 16, InitValues = 1e-5,
    };

    /// <summary>ViT-Ti/16-sized BEiT (192 wide, 12 blocks, 3 heads): for demos on CPU.</summary>
    public static VitConfig Tiny(int numClasses = 1000) => Base(numClasses) with
    {
        EmbedDim = 192, Depth = 12, NumHeads = 3,
    };

    /// <summary>
    /// The bundled default models' size (Fashion-MNIST pipeline, sized for a 2-core CPU): 28 px images,
    /// 4 px patches (7×7 grid), 96 wide, 6 blocks, 3 heads; 0.7 M parameters.
    /// </summary>
    public static VitConfig Small(int numClasses = 10) => Base(numClasses) with
    {
        ImgSize = 28, PatchSize = 4, EmbedDim = 96, Depth = 6, NumHeads = 3, DropPathRate = 0.05,
    };

    /// <summary>A few-kilobyte model for tests: 32 px images, 8 px patches (4×4 grid), 2 blocks.</summary>
    public static VitConfig Micro(int numClasses = 10) => Base(numClasses) with
    {
        ImgSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2,
    };

    public override void Validate()
    {
        ValidateTrunk();
        Require(NumClasses >= 0, "num_classes must be >= 0");
    }
}
