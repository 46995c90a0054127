using BeitV2.Ml.Models.Layers;
using System.Text.Json.Serialization;

namespace BeitV2.Ml.Models.Vqkd;

/// <summary>
/// Configuration of the VQ-KD visual tokenizer (unilm <c>modeling_vqkd.VQKD</c>): encoder and
/// decoder ViT configs and the quantizer / task-layer settings.
/// </summary>
public sealed record VqkdConfig
{
    public VitConfig Encoder { get; init; } = DefaultVit(224, 16, 3, 12);
    public VitConfig Decoder { get; init; } = DefaultVit(14, 1, 32, 3);
    /// <summary>Codebook size (8192).</summary>
    public int NEmbed { get; init; } = 8192;
    /// <summary>Code dimension (32).</summary>
    public int EmbedDim { get; init; } = 32;
    public double Decay { get; init; } = 0.99;
    /// <summary>"default" ([0,1] or [0,255] → [−1, 1]), "imagenet_norm", or "dall-e" (unchanged).</summary>
    public string ProcessType { get; init; } = "default";
    public bool QuantizeKmeansInit { get; init; } = true;
    /// <summary>"clip", "dino", "beitv2" (one of our own backbones) or "none" (targets supplied by the caller).</summary>
    public string TeacherModelType { get; init; } = "clip";
    public int DecoderOutDim { get; init; } = 512;
    public string RecLossType { get; init; } = "cosine";
    /// <summary>Stored by the reference but never used (the teacher sees the tokenizer's input size).</summary>
    public int? TeacherInputSize { get; init; }

    /// <summary>get_model_default_params(): the ViT-B/16 shape with abs pos embed, no layer scale, mean pooling, no head.</summary>
    public static VitConfig DefaultVit(int imgSize, int patchSize, int inChans, int depth) => new()
    {
        ImgSize = imgSize, PatchSize = patchSize, InChans = inChans, NumClasses = 0, EmbedDim = 768, Depth = depth,
        NumHeads = 12, MlpRatio = 4, QkvBias = true, NormEps = 1e-6, InitValues = 0, UseAbsPosEmb = true,
        UseRelPosBias = false, UseSharedRelPosBias = false, UseMeanPooling = true,
    };

    /// <summary>vqkd_encoder_base_decoder_3x768x12_clip: the tokenizer behind the released BEiT v2 models.</summary>
    public static VqkdConfig Base3xClip() => new();

    /// <summary>vqkd_encoder_base_decoder_1x768x12_clip.</summary>
    public static VqkdConfig Base1xClip() => new() { Decoder = DefaultVit(14, 1, 32, 1) };

    /// <summary>vqkd_encoder_base_decoder_1x768x12_dino (768-d targets).</summary>
    public static VqkdConfig Base1xDino() => new() { Decoder = DefaultVit(14, 1, 32, 1), TeacherModelType = "dino", DecoderOutDim = 768 };

    /// <summary>The tokenizer of the bundled models: a <see cref="VitConfig.Small"/>-shaped encoder (4 blocks), 1-block decoder, 32-d codes.</summary>
    public static VqkdConfig Small(int decoderOutDim, int nEmbed = 512) => new()
    {
        Encoder = DefaultVit(28, 4, 3, 4) with { EmbedDim = 96, NumHeads = 3 },
        Decoder = DefaultVit(7, 1, 32, 1) with { EmbedDim = 96, NumHeads = 3 },
        NEmbed = nEmbed, EmbedDim = 32, TeacherModelType = "none", DecoderOutDim = decoderOutDim,
    };

    /// <summary>A test-sized tokenizer: 32 px, 8 px patches, 64 codes of dim 8, 1-block decoder.</summary>
    public static VqkdConfig Micro(int decoderOutDim = 32, int nEmbed = 64) => new()
    {
        Encoder = DefaultVit(32, 8, 3, 2) with { EmbedDim = 32, NumHeads = 2 },
        Decoder = DefaultVit(4, 1, 8, 1) with { EmbedDim = 32, NumHeads = 2 },
        NEmbed = nEmbed, EmbedDim = 8, TeacherModelType = "none", DecoderOutDim = decoderOutDim,
    };

    [JsonIgnore] public int GridSize => Encoder.GridSize;

    public void Validate()
    {
        Encoder.Validate();
        Decoder.Validate();
        VitConfig.Require(Decoder.InChans == EmbedDim, $"decoder in_chans ({Decoder.InChans}) must equal the code dimension embed_dim ({EmbedDim})");
        VitConfig.Require(Decoder.PatchSize == 1 && Decoder.ImgSize == Encoder.GridSize,
            $"the decoder must run on the {Encoder.GridSize}x{Encoder.GridSize} code map with patch size 1");
        VitConfig.Require(NEmbed > 0 && EmbedDim > 0 && DecoderOutDim > 0, "codebook sizes must be positive");
        VitConfig.Require(Decay is > 0 and < 1, "decay must be in (0, 1)");
        VitConfig.Require(RecLossType == "cosine", $"rec_loss_type '{RecLossType}' is not implemented (the reference implements only 'cosine')");
        VitConfig.Require(ProcessType is "default" or "imagenet_norm" or "dall-e", $"unknown process_type '{ProcessType}'");
    }
}
