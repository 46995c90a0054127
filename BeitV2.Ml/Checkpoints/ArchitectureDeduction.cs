using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Tells from a state dict's keys which model it holds and reads its architecture from the tensor
/// shapes (the import route of the API). What the shapes determine:
/// <list type="bullet">
/// <item>width, patch size, input channels (<c>patch_embed.proj.weight</c>), depth (highest block index),
/// MLP ratio (<c>mlp.fc1</c>), q/v bias (<c>attn.q_bias</c>), layer scale (<c>gamma_1</c>),
/// absolute position embedding and its grid (<c>pos_embed</c>), per-layer vs shared relative tables
/// (rows = (2G−1)²+3 give the window G, hence img_size = G·patch; columns give the heads), pooling
/// (<c>fc_norm</c> vs <c>norm</c>), classes (<c>head.weight</c>);</item>
/// <item>MIM: vocabulary (<c>lm_head</c>), aggregation depth (<c>cls_pt_layers</c>), shared lm head
/// (absence of <c>cls_pt_lm_head</c>); VQ-KD: encoder/decoder, codebook (<c>quantize.embedding.weight</c>),
/// target width (<c>decode_task_layer.2</c>); CLIP tower (<c>visual.*</c>, as CLIP's build_model); DINO.</item>
/// <item>mmseg segmenter (<see cref="SegmentationConfig"/>): the backbone as a ViT under <c>backbone.</c>, classes and
/// head width (<c>decode_head.conv_seg</c>), the number of pooling branches, whether there is an auxiliary head and
/// its width (<c>auxiliary_head.conv_seg</c>); head variants the model cannot build are rejected.</item>
/// </list>
/// What they cannot determine is defaulted and listed in <see cref="DeducedModel.Notes"/> and
/// <see cref="DeducedModel.DefaultedFields"/>: the head count when there is no relative table
/// (VQ-KD, DINO, CLIP, abs-pos-only ViTs: width/64), MIM early_layers, LayerNorm eps, qk_scale,
/// dropout/drop-path rates, init scales, the exact layer-scale init, VQ-KD process type and decay,
/// and the segmentation out_indices / pool scales / auxiliary in_index / dropout / align_corners / loss settings.
/// An override JSON object (keyword names of the official constructors; for segmenters the snake_case
/// <see cref="SegmentationConfig"/> fields) replaces any deduced or defaulted value.
/// </summary>
public static class ArchitectureDeduction
{
    private const string TeacherPrefix = "teacher_model.";

    /// <summary>Recognises the model in <paramref name="stateDict"/> and deduces its config.</summary>
    /// <param name="stateDict">Weights, normally <c>CheckpointKeys.Normalize(StateDictFile.Read(path))</c> (normalised again here).</param>
    /// <param name="overrides">
    /// Optional JSON object merged into the deduced config before it is deserialised, so unknown
    /// keys and bad values are errors. Nested configs merge key by key (e.g. <c>{"encoder": {"num_heads": 12}}</c>).
    /// </param>
    /// <param name="catalog">the kinds to recognise; <see cref="ModelCatalog.Default"/> when null.</param>
    /// <exception cref="CheckpointException">the dict is not a model this library knows, or its shapes are inconsistent.</exception>
    /// <exception cref="InvalidDataException">the override is not an object, or has unknown keys or bad values.</exception>
    /// <exception cref="ArgumentException">the resulting config is invalid (e.g. heads not dividing the width).</exception>
    public static DeducedModel Deduce(IReadOnlyDictionary<string, Tensor> stateDict, JsonElement? overrides = null, ModelCatalog? catalog = null)
    {
        var over = ConfigOverrides.Parse(overrides);
        var sd = Prepare(stateDict);
        var entry = Detect(sd, catalog ?? ModelCatalog.Default);
        var notes = new DeductionNotes();
        return Finish(entry, entry.Deduce(sd, over, notes), over, notes);
    }

    /// <summary>
    /// Checks an override against the limits of <see cref="ConfigOverrides.Limits"/> without any weights, so a
    /// request asking for an absurd model is refused before its upload is read.
    /// </summary>
    /// <exception cref="CheckpointException">a value is above its limit, or the override is nested too deep.</exception>
    /// <exception cref="InvalidDataException">the override is not a JSON object.</exception>
    public static void CheckOverrides(JsonElement? overrides) => ConfigOverrides.Parse(overrides);

    /// <summary>
    /// Builds the model <paramref name="model"/> describes and loads <paramref name="stateDict"/> into it
    /// with the library's loaders (strict: every key must fit; a segmenter's relative tables and position
    /// embedding are resized to an overridden img_size, as <see cref="SegmenterCheckpoint"/> does). The caller owns the returned module.
    /// </summary>
    /// <exception cref="CheckpointException">the weights do not fit the config (e.g. an override changed a shape).</exception>
    public static nn.Module BuildAndLoad(DeducedModel model, IReadOnlyDictionary<string, Tensor> stateDict, ModelCatalog? catalog = null) =>
        (catalog ?? ModelCatalog.Default)[model.Kind].Import(model.Config, Prepare(stateDict));

    // ---------------------------------------------------------------- detection

    /// <summary>Normalises keys and strips a <c>teacher_model.</c> prefix that every key carries (a teacher cut out of a VQ-KD checkpoint).</summary>
    private static Dictionary<string, Tensor> Prepare(IReadOnlyDictionary<string, Tensor> raw)
    {
        var sd = CheckpointKeys.Normalize(raw);
        return sd.Count > 0 && sd.Keys.All(k => k.StartsWith(TeacherPrefix, StringComparison.Ordinal))
            ? CheckpointKeys.SubTree(sd, TeacherPrefix)
            : sd;
    }

    private static ModelEntry Detect(IReadOnlyDictionary<string, Tensor> sd, ModelCatalog catalog)
    {
        var entry = catalog.Entries.FirstOrDefault(e => e.CanDeduce && e.Recognises(sd));
        if (entry is not null) return entry;
        var sample = sd.Keys.Order(StringComparer.Ordinal).Take(8).ToList();
        var expected = catalog.Entries.Select(e => e.Signature).OfType<string>().ToList();
        throw new CheckpointException(
            $"Cannot tell which model this state dict holds ({sd.Count} tensors" +
            (sample.Count > 0 ? $"; e.g. {string.Join(", ", sample)}{(sd.Count > sample.Count ? ", …" : "")}" : "") +
            "). Expected " + (expected.Count > 1 ? string.Join(", ", expected[..^1]) + " or " + expected[^1] : string.Concat(expected)) + ".");
    }

    private static bool Any(IReadOnlyDictionary<string, Tensor> sd, string prefix) => sd.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));

    // The kinds' telltale keys, exclusive of one another (the catalogue tries them in its order).
    internal static bool IsSegmenter(IReadOnlyDictionary<string, Tensor> sd) => Any(sd, "backbone.") && Any(sd, "decode_head.");

    internal static bool IsVqkd(IReadOnlyDictionary<string, Tensor> sd) =>
        !IsSegmenter(sd) && sd.ContainsKey("encoder.patch_embed.proj.weight") && sd.ContainsKey("quantize.embedding.weight");

    internal static bool IsClip(IReadOnlyDictionary<string, Tensor> sd) => !IsSegmenter(sd) && !IsVqkd(sd) && sd.ContainsKey("visual.conv1.weight");

    private static bool IsVitFamily(IReadOnlyDictionary<string, Tensor> sd) =>
        !IsSegmenter(sd) && !IsVqkd(sd) && !IsClip(sd)
        && sd.ContainsKey("patch_embed.proj.weight") && sd.ContainsKey("cls_token") && Any(sd, "blocks.");

    internal static bool IsMim(IReadOnlyDictionary<string, Tensor> sd) => IsVitFamily(sd) && sd.ContainsKey("lm_head.weight");

    // BEiT's qkv projection has no bias (q and v biases are separate); DINO's has one.
    internal static bool IsDino(IReadOnlyDictionary<string, Tensor> sd) =>
        IsVitFamily(sd) && !sd.ContainsKey("lm_head.weight") && sd.ContainsKey("blocks.0.attn.qkv.bias");

    internal static bool IsBeitClassifier(IReadOnlyDictionary<string, Tensor> sd) =>
        IsVitFamily(sd) && !sd.ContainsKey("lm_head.weight") && !sd.ContainsKey("blocks.0.attn.qkv.bias");

    // ---------------------------------------------------------------- shared ViT shape

    /// <summary>The transformer shape read from a (prefixed) BEiT-style or DINO-style backbone.</summary>
    private sealed record Backbone(
        int ImgSize, int PatchSize, int InChans, int EmbedDim, int Depth, int NumHeads, double MlpRatio, int? AttnHeadDim,
        bool QBias, bool QkvBias, bool LayerScale, bool AbsPos, bool PerLayerTable, bool SharedTable, bool FcNorm, bool Norm, int NumClasses);

    /// <param name="p">key prefix (<c>encoder.</c>, <c>backbone.</c> or empty).</param>
    /// <param name="f">note/JSON path prefix of the config (<c>encoder.</c>, <c>backbone.</c> or empty).</param>
    /// <param name="headsHint">the override's head count, needed when qkv is not 3·width (attn_head_dim).</param>
    private static Backbone ReadBackbone(IReadOnlyDictionary<string, Tensor> sd, string p, string f, int? headsHint,
        DeductionNotes notes, string what)
    {
        var projKey = p + "patch_embed.proj.weight";
        var proj = Need(sd, projKey, what);
        if (proj.ndim != 4 || proj.shape[2] != proj.shape[3])
            throw new CheckpointException($"'{projKey}' has shape {Shape(proj)}; expected (embed_dim, in_chans, patch, patch).");
        int embed = (int)proj.shape[0], inChans = (int)proj.shape[1], patch = (int)proj.shape[2];
        notes.FromWeights(f + "embed_dim", embed, $"output channels of {projKey}");
        notes.FromWeights(f + "patch_size", patch, $"kernel size of {projKey}");
        notes.FromWeights(f + "in_chans", inChans, $"input channels of {projKey}");
        if (sd.TryGetValue(p + "cls_token", out var cls) && cls.shape[^1] != embed)
            throw new CheckpointException($"'{p}cls_token' has width {cls.shape[^1]} but '{projKey}' {embed}.");

        var depth = CountIndexed(sd.Keys, p + "blocks.");
        if (depth == 0) throw new CheckpointException($"The {what} has no '{p}blocks.0.*' keys.");
        notes.FromWeights(f + "depth", depth, $"highest block index in {p}blocks.N.* plus one");

        var b0 = p + "blocks.0.";
        var fc1 = Need(sd, b0 + "mlp.fc1.weight", what);
        var mlpRatio = MlpRatio(fc1.shape[0], embed);
        notes.FromWeights(f + "mlp_ratio", mlpRatio, $"{fc1.shape[0]} hidden units in {b0}mlp.fc1.weight / embed_dim");
        var qkv = Need(sd, b0 + "attn.qkv.weight", what);
        if (qkv.shape[0] % 3 != 0)
            throw new CheckpointException($"'{b0}attn.qkv.weight' has {qkv.shape[0]} rows, not a multiple of 3.");
        var allHeadDim = (int)(qkv.shape[0] / 3);

        int? absGrid = sd.TryGetValue(p + "pos_embed", out var pos) ? GridFromTokens(pos.shape[^2], p + "pos_embed") : null;
        var perKey = b0 + "attn.relative_position_bias_table";
        var sharedKey = p + "rel_pos_bias.relative_position_bias_table";
        var perLayer = sd.TryGetValue(perKey, out var perTable);
        var shared = sd.TryGetValue(sharedKey, out var sharedTable);
        if (perLayer && shared && !perTable!.shape.SequenceEqual(sharedTable!.shape))
            throw new CheckpointException($"'{perKey}' {Shape(perTable)} and '{sharedKey}' {Shape(sharedTable)} disagree.");
        var table = perLayer ? perTable : sharedTable;
        var tableKey = perLayer ? perKey : sharedKey;
        int? window = table is null ? null
            : (VitCheckpoint.TryWindowFromRows(table.shape[0])
               ?? throw new CheckpointException($"{tableKey} has {table.shape[0]} rows, which is not (2G-1)^2 + 3 for a square window.")).H;

        int img;
        if (window is { } g)
        {
            img = g * patch;
            notes.FromWeights(f + "img_size", img, $"{tableKey} has {table!.shape[0]} rows = (2·{g}−1)²+3, a {g}×{g} window of {patch} px patches");
            if (absGrid is { } a && a != g)
                notes.Info($"{p}pos_embed holds a {a}×{a} grid but the relative position table a {g}×{g} window; the position embedding is interpolated on load.");
        }
        else if (absGrid is { } a)
        {
            img = a * patch;
            notes.FromWeights(f + "img_size", img, $"{p}pos_embed has {a * a + 1} tokens = [CLS] + {a}×{a} patches of {patch} px");
        }
        else
        {
            img = 224 % patch == 0 ? 224 : 14 * patch;
            notes.Defaulted(f + "img_size", img, "neither a position embedding nor a relative position table fixes the resolution (the model accepts any multiple of the patch size)");
        }

        int heads;
        if (headsHint is { } h) heads = h; // reported as an override
        else if (table is not null)
        {
            heads = (int)table.shape[1];
            notes.FromWeights(f + "num_heads", heads, $"columns of {tableKey}");
        }
        else
        {
            heads = Math.Max(1, allHeadDim / 64);
            notes.Defaulted(f + "num_heads", heads,
                "width / 64 (64-wide heads, as in every released model): without a relative position table the head count is " +
                "not recorded in the weights; set num_heads in the config override if this model uses another head width");
        }

        int? attnHeadDim = null;
        if (allHeadDim != embed && heads > 0)
        {
            if (allHeadDim % heads != 0)
                throw new CheckpointException($"'{b0}attn.qkv.weight' projects to 3×{allHeadDim}, which {heads} heads do not divide.");
            attnHeadDim = allHeadDim / heads;
            notes.FromWeights(f + "attn_head_dim", attnHeadDim, $"{b0}attn.qkv.weight projects to 3×{allHeadDim} ≠ 3×embed_dim, split over {heads} heads");
        }

        var numClasses = sd.TryGetValue(p + "head.weight", out var head) ? (int)head.shape[0] : 0;
        return new Backbone(img, patch, inChans, embed, depth, heads, mlpRatio, attnHeadDim,
            QBias: sd.ContainsKey(b0 + "attn.q_bias"), QkvBias: sd.ContainsKey(b0 + "attn.qkv.bias"),
            LayerScale: sd.ContainsKey(b0 + "gamma_1"), AbsPos: absGrid is not null, PerLayerTable: perLayer, SharedTable: shared,
            FcNorm: sd.ContainsKey(p + "fc_norm.weight"), Norm: sd.ContainsKey(p + "norm.weight"), NumClasses: numClasses);
    }

    /// <summary>Notes for the BEiT-specific flags (qkv bias, layer scale, position encodings).</summary>
    private static void NoteBeitFlags(Backbone b, string p, string f, DeductionNotes notes)
    {
        notes.FromWeights(f + "qkv_bias", b.QBias, b.QBias ? $"{p}blocks.0.attn.q_bias is present" : $"no {p}blocks.0.attn.q_bias");
        if (b.LayerScale)
            notes.Defaulted(f + "init_values", 0.1,
                $"layer scale is on ({p}blocks.0.gamma_1 is present); its initial value is not recorded and does not matter, the checkpoint's gammas replace it");
        else
            notes.FromWeights(f + "init_values", 0.0, $"no {p}blocks.0.gamma_1: no layer scale");
        notes.FromWeights(f + "use_abs_pos_emb", b.AbsPos, b.AbsPos ? $"{p}pos_embed is present" : $"no {p}pos_embed");
        notes.FromWeights(f + "use_rel_pos_bias", b.PerLayerTable,
            b.PerLayerTable ? $"per-layer tables ({p}blocks.N.attn.relative_position_bias_table)" : "no per-layer relative position tables");
        notes.FromWeights(f + "use_shared_rel_pos_bias", b.SharedTable,
            b.SharedTable ? $"one shared table ({p}rel_pos_bias.relative_position_bias_table)" : "no shared relative position table");
    }

    /// <summary>Constructor arguments that only matter for training or that no tensor records.</summary>
    private static void NoteUnrecorded(string f, DeductionNotes notes, double normEps = 1e-6, bool qkScale = true)
    {
        notes.Defaulted(f + "norm_eps", normEps, "the LayerNorm eps every BEiT v2 / DINO model uses");
        if (qkScale) notes.Defaulted(f + "qk_scale", null, "attention scale head_dim^-0.5, as in every released model");
        notes.Defaulted(f + "drop_rate", 0.0, "training-time dropout (no effect at inference)");
        notes.Defaulted(f + "attn_drop_rate", 0.0, "training-time dropout (no effect at inference)");
        notes.Defaulted(f + "drop_path_rate", 0.0, "training-time stochastic depth (no effect at inference); the fine-tuning recipes use 0.1–0.2");
    }

    // ---------------------------------------------------------------- per kind

    internal static VitConfig Vit(IReadOnlyDictionary<string, Tensor> sd, JsonObject? over, DeductionNotes notes) =>
        VitFrom(sd, "", "", over, notes, "BEiT vision transformer", withHead: true);

    private static VitConfig VitFrom(IReadOnlyDictionary<string, Tensor> sd, string p, string f, JsonObject? over, DeductionNotes notes,
        string what, bool withHead)
    {
        var b = ReadBackbone(sd, p, f, ConfigOverrides.Int(over, "num_heads"), notes, what);
        NoteBeitFlags(b, p, f, notes);
        bool meanPooling;
        if (b.FcNorm) { meanPooling = true; notes.FromWeights(f + "use_mean_pooling", true, $"{p}fc_norm is present (mean of the patch tokens)"); }
        else if (b.Norm) { meanPooling = false; notes.FromWeights(f + "use_mean_pooling", false, $"{p}norm instead of {p}fc_norm ([CLS] token)"); }
        else
        {
            meanPooling = true;
            notes.Defaulted(f + "use_mean_pooling", true, $"neither {p}fc_norm nor {p}norm is present: the final norm will be missing on load");
        }
        if (withHead)
            notes.FromWeights(f + "num_classes", b.NumClasses, b.NumClasses > 0 ? $"rows of {p}head.weight" : $"no {p}head.weight (features only)");
        NoteUnrecorded(f, notes);
        notes.Defaulted(f + "init_scale", 0.001, "initial scale of a new head (training only)");
        return new VitConfig
        {
            ImgSize = b.ImgSize, PatchSize = b.PatchSize, InChans = b.InChans, NumClasses = withHead ? b.NumClasses : 0,
            EmbedDim = b.EmbedDim, Depth = b.Depth, NumHeads = b.NumHeads, MlpRatio = b.MlpRatio, QkvBias = b.QBias,
            InitValues = b.LayerScale ? 0.1 : 0, AttnHeadDim = b.AttnHeadDim, UseAbsPosEmb = b.AbsPos,
            UseRelPosBias = b.PerLayerTable, UseSharedRelPosBias = b.SharedTable, UseMeanPooling = meanPooling,
        };
    }

    internal static MimConfig Mim(IReadOnlyDictionary<string, Tensor> sd, JsonObject? over, DeductionNotes notes)
    {
        var b = ReadBackbone(sd, "", "", ConfigOverrides.Int(over, "num_heads"), notes, "BEiT v2 MIM model");
        NoteBeitFlags(b, "", "", notes);
        var vocab = (int)Need(sd, "lm_head.weight", "BEiT v2 MIM model").shape[0];
        notes.FromWeights("vocab_size", vocab, "rows of lm_head.weight");
        var headLayers = CountIndexed(sd.Keys, "cls_pt_layers.");
        notes.FromWeights("head_layers", headLayers, headLayers > 0
            ? "highest index in cls_pt_layers.N.* plus one"
            : "no cls_pt_layers: a plain MIM model without the patch-aggregation head");
        var shared = !sd.ContainsKey("cls_pt_lm_head.weight");
        notes.FromWeights("shared_lm_head", shared, shared ? "no cls_pt_lm_head (the head reuses norm and lm_head)" : "cls_pt_lm_head is present");
        var early = b.Depth switch { 12 => 9, 24 => 21, _ => Math.Max(1, b.Depth - 3) };
        notes.Defaulted("early_layers", early,
            "the block whose output feeds the aggregation head is not recorded in the weights; the published recipe uses 9 for " +
            "12 blocks and 21 for 24 (depth − 3 otherwise). Set early_layers in the config override if the model was trained otherwise");
        NoteUnrecorded("", notes);
        notes.Defaulted("init_std", 0.02, "initialisation std (training only)");
        return new MimConfig
        {
            ImgSize = b.ImgSize, PatchSize = b.PatchSize, InChans = b.InChans, VocabSize = vocab, EmbedDim = b.EmbedDim,
            Depth = b.Depth, NumHeads = b.NumHeads, MlpRatio = b.MlpRatio, QkvBias = b.QBias, InitValues = b.LayerScale ? 0.1 : 0,
            AttnHeadDim = b.AttnHeadDim, UseAbsPosEmb = b.AbsPos, UseRelPosBias = b.PerLayerTable, UseSharedRelPosBias = b.SharedTable,
            EarlyLayers = early, HeadLayers = headLayers, SharedLmHead = shared, DropPathRate = 0,
        };
    }

    internal static VqkdConfig Vqkd(IReadOnlyDictionary<string, Tensor> sd, JsonObject? over, DeductionNotes notes)
    {
        var encoder = VitFrom(sd, "encoder.", "encoder.", ConfigOverrides.Child(over, "encoder"), notes, "VQ-KD encoder", withHead: false);
        var decoder = VitFrom(sd, "decoder.", "decoder.", ConfigOverrides.Child(over, "decoder"), notes, "VQ-KD decoder", withHead: false);
        var codebook = Need(sd, "quantize.embedding.weight", "VQ-KD tokenizer");
        int nEmbed = (int)codebook.shape[0], codeDim = (int)codebook.shape[1];
        notes.FromWeights("n_embed", nEmbed, "rows of quantize.embedding.weight");
        notes.FromWeights("embed_dim", codeDim, "columns of quantize.embedding.weight");
        var outDim = (int)Need(sd, "decode_task_layer.2.weight", "VQ-KD tokenizer").shape[0];
        notes.FromWeights("decoder_out_dim", outDim, "rows of decode_task_layer.2.weight");
        notes.Defaulted("quantize_kmeans_init", false, "the codebook comes from the weights, so no k-means initialisation");
        notes.Defaulted("teacher_model_type", "none", "a loaded tokenizer has no teacher (as the reference's as_tokenzer=True)");
        if (sd.Keys.Any(k => k.StartsWith(TeacherPrefix, StringComparison.Ordinal)))
            notes.Info($"The file also holds the training teacher (teacher_model.*, a {(sd.ContainsKey(TeacherPrefix + "visual.conv1.weight") ? "CLIP" : "DINO")} model); it is not part of the tokenizer and is dropped on load.");
        notes.Defaulted("process_type", "default",
            "input scaling [0,1] → [−1,1] used by every released tokenizer; it changes the token ids, set it in the override if the tokenizer was trained with imagenet_norm or dall-e");
        notes.Defaulted("decay", 0.99, "codebook EMA decay (training only)");
        notes.Defaulted("rec_loss_type", "cosine", "the only reconstruction loss of the reference");
        notes.Defaulted("teacher_input_size", null, "stored but unused by the reference");
        return new VqkdConfig
        {
            Encoder = encoder, Decoder = decoder, NEmbed = nEmbed, EmbedDim = codeDim, DecoderOutDim = outDim,
            QuantizeKmeansInit = false, TeacherModelType = "none",
        };
    }

    internal static ClipVisionConfig Clip(IReadOnlyDictionary<string, Tensor> sd, JsonObject? over, DeductionNotes notes)
    {
        var visual = CheckpointKeys.SubTree(sd, "visual.");
        foreach (var k in new[] { "conv1.weight", "positional_embedding", "proj" }) Need(visual, k, "CLIP image tower", "visual.");
        var c = ClipVisionConfig.FromStateDict(visual);
        if (c.Layers == 0) throw new CheckpointException("The CLIP image tower has no visual.transformer.resblocks.N.attn.in_proj_weight keys.");
        var grid = GridFromTokens(visual["positional_embedding"].shape[0], "visual.positional_embedding");
        notes.FromWeights("input_resolution", c.InputResolution, $"visual.positional_embedding has {grid * grid + 1} rows = [CLS] + {grid}×{grid} patches");
        notes.FromWeights("patch_size", c.PatchSize, "kernel size of visual.conv1.weight");
        notes.FromWeights("width", c.Width, "output channels of visual.conv1.weight");
        notes.FromWeights("layers", c.Layers, "number of visual.transformer.resblocks.N.attn.in_proj_weight");
        notes.FromWeights("output_dim", c.OutputDim, "columns of visual.proj");
        int heads;
        if (ConfigOverrides.Int(over, "heads") is { } h) heads = h;
        else
        {
            heads = Math.Max(1, c.Width / 64);
            notes.Defaulted("heads", heads, "width / 64, as CLIP's build_model: the head count is not recorded in the weights; set heads in the config override if it differs");
        }
        notes.FromWeights("norm_eps", c.NormEps, "CLIP's LayerNorm always uses PyTorch's default eps");
        return c with { Heads = heads };
    }

    internal static DinoConfig Dino(IReadOnlyDictionary<string, Tensor> sd, JsonObject? over, DeductionNotes notes)
    {
        const string what = "DINO ViT";
        var b = ReadBackbone(sd, "", "", ConfigOverrides.Int(over, "num_heads"), notes, what);
        if (b.QBias || b.LayerScale || b.PerLayerTable || b.SharedTable || !b.AbsPos || !b.Norm || b.AttnHeadDim is not null)
            throw new CheckpointException(
                "The state dict has a biased qkv projection like a DINO ViT, but also keys DINO's ViT does not have (or lacks pos_embed / norm): " +
                "q_bias, gamma_1, relative position tables or a narrower qkv are BEiT's.");
        notes.FromWeights("qkv_bias", true, "blocks.0.attn.qkv.bias is present");
        notes.FromWeights("num_classes", b.NumClasses, b.NumClasses > 0 ? "rows of head.weight" : "no head.weight (features only)");
        NoteUnrecorded("", notes);
        return new DinoConfig
        {
            ImgSize = b.ImgSize, PatchSize = b.PatchSize, InChans = b.InChans, NumClasses = b.NumClasses, EmbedDim = b.EmbedDim,
            Depth = b.Depth, NumHeads = b.NumHeads, MlpRatio = b.MlpRatio, QkvBias = true,
        };
    }

    /// <summary>
    /// An mmseg UperNet on the BEiT segmentation backbone, as <see cref="BeitSegmenter"/> builds it
    /// (unilm beit2/semantic_segmentation/backbone/beit.py with configs/_base_/models/upernet_beit.py): the transformer (as a ViT, under <c>backbone.</c>), the necks of its patch size,
    /// a four-level UPerHead and optionally the FCN auxiliary head. Head variants the model cannot
    /// represent are rejected here rather than at load time, with the reason.
    /// </summary>
    internal static SegmentationConfig Segmenter(IReadOnlyDictionary<string, Tensor> sd, JsonObject? over, DeductionNotes notes)
    {
        const string what = "segmentation model";
        var defaults = new SegmentationConfig();
        var b = ReadBackbone(sd, "backbone.", "backbone.", ConfigOverrides.Int(ConfigOverrides.Child(over, "backbone"), "num_heads"),
            notes, "segmentation backbone");
        NoteBeitFlags(b, "backbone.", "backbone.", notes);
        NoteUnrecorded("backbone.", notes);
        notes.Info("backbone.num_classes, use_mean_pooling and init_scale are not used: the segmentation backbone has no final norm and no classifier.");
        long embed = b.EmbedDim;
        // 4 px patches come in two layouts (BeitV2's extension): parameter-free necks (output stride 4), or an upsampling
        // fpn1 (output stride 2), told apart by its deconvolution's weights.
        var outputStride = b.PatchSize == 4 && sd.ContainsKey("backbone.fpn1.0.weight") ? 2 : SegmentationConfig.DefaultOutputStride;
        CheckNecks(sd, b.PatchSize, outputStride);
        notes.Info((b.PatchSize, outputStride) switch
        {
            (16, _) => "backbone necks for 16 px patches: fpn1 (deconvolution + BatchNorm + GELU + deconvolution), fpn2 (deconvolution), fpn3 (identity), fpn4 (max-pool).",
            (8, _) => "backbone necks for 8 px patches: fpn1 (deconvolution), fpn2 (identity), fpn3 and fpn4 (max-pool).",
            (_, 2) => "backbone necks for 4 px patches with output stride 2 (BeitV2's extension): fpn1 (deconvolution + BatchNorm + GELU), " +
                      "fpn2 (identity), fpn3 and fpn4 (max-pool).",
            _ => "backbone necks for 4 px patches (BeitV2's extension): fpn1 (identity), fpn2..fpn4 (max-pool).",
        });
        if (b.PatchSize == 4)
            notes.FromWeights("output_stride", outputStride, outputStride == 2
                ? "backbone.fpn1.0 (a deconvolution) is present: fpn1 upsamples the 4 px patch grid 2×"
                : "no backbone.fpn1.* weights: the 4 px patch grid is the finest level");

        // decode_head: UPerHead on the four neck outputs.
        var convSeg = Need(sd, "decode_head.conv_seg.weight", what);
        int numClasses = (int)convSeg.shape[0], channels = (int)convSeg.shape[1];
        notes.FromWeights("num_classes", numClasses, "rows of decode_head.conv_seg.weight");
        notes.FromWeights("channels", channels, "columns of decode_head.conv_seg.weight");
        int lateral = CountIndexed(sd.Keys, "decode_head.lateral_convs."), fpn = CountIndexed(sd.Keys, "decode_head.fpn_convs.");
        if (lateral != 3 || fpn != 3)
            throw new CheckpointException(
                $"The UPerHead has {lateral} lateral and {fpn} FPN convs (decode_head.lateral_convs.N, decode_head.fpn_convs.N); " +
                "the BEiT segmenter feeds it 4 levels (one per neck), which needs 3 of each.");
        var pools = CountIndexed(sd.Keys, "decode_head.psp_modules.");
        if (pools == 0)
            throw new CheckpointException("The UPerHead has no pyramid pooling branches (decode_head.psp_modules.N.1.conv.weight).");
        var inChannels = new List<long>();
        for (var i = 0; i < lateral; i++) inChannels.Add(Need(sd, $"decode_head.lateral_convs.{i}.conv.weight", what).shape[1]);
        inChannels.Add(Need(sd, "decode_head.bottleneck.conv.weight", what).shape[1] - pools * (long)channels);
        if (inChannels.Any(c => c != embed))
            throw new CheckpointException(
                $"The UPerHead's input widths are [{string.Join(", ", inChannels)}] (input channels of decode_head.lateral_convs.N, and of " +
                $"decode_head.bottleneck minus {pools} pooled branches of {channels}); the BEiT segmenter feeds it the necks' " +
                $"{embed}-channel maps (in_channels = embed_dim at every level).");
        notes.Info($"decode_head: UPerHead on 4 levels of {embed} channels (decode_head.lateral_convs.N and decode_head.bottleneck), {pools} pooling branches.");
        int[] upernetScales = { 1, 2, 3, 6 };
        var poolScales = pools <= upernetScales.Length ? upernetScales.Take(pools).ToArray() : Enumerable.Range(1, pools).ToArray();
        notes.Defaulted("pool_scales", poolScales,
            $"{pools} pyramid-pooling branches (decode_head.psp_modules.N); their output sizes are not recorded, UperNet's are (1, 2, 3, 6)");
        notes.Defaulted("dropout_ratio", defaults.DropoutRatio, "training-time dropout before each conv_seg (no effect at inference)");
        notes.Defaulted("align_corners", defaults.AlignCorners, "bilinear resizes of the heads, as in every BEiT segmentation config");

        if (b.Depth < 4)
            throw new CheckpointException($"The segmentation backbone has {b.Depth} blocks; the four necks need 4 distinct blocks (out_indices).");
        var outIndices = SegmentationConfig.DefaultOutIndices(b.Depth);
        notes.Defaulted("out_indices", outIndices,
            "the blocks feeding the necks are not recorded in the weights; the published configs use [3, 5, 7, 11] for 12 blocks " +
            "and [7, 11, 15, 23] for 24 (otherwise the last block ending within each quarter, as this library trains them). " +
            "Set out_indices in the config override if the model differs");

        // auxiliary_head: FCNHead (num_convs 1, concat_input False) on one neck output.
        var useAux = sd.TryGetValue("auxiliary_head.conv_seg.weight", out var auxSeg);
        var auxChannels = defaults.AuxChannels;
        if (useAux)
        {
            var convs = CountIndexed(sd.Keys, "auxiliary_head.convs.");
            if (convs != 1)
                throw new CheckpointException(
                    $"The auxiliary FCN head has {convs} convs (auxiliary_head.convs.N); the BEiT segmenter's has exactly one (num_convs=1).");
            if (sd.Keys.Any(k => k.StartsWith("auxiliary_head.conv_cat.", StringComparison.Ordinal)))
                throw new CheckpointException(
                    "The auxiliary FCN head concatenates its input (auxiliary_head.conv_cat.*, concat_input=True); the BEiT segmenter's does not.");
            if (auxSeg!.shape[0] != numClasses)
                throw new CheckpointException(
                    $"auxiliary_head.conv_seg.weight has {auxSeg.shape[0]} classes but decode_head.conv_seg.weight {numClasses}; " +
                    "the BEiT segmenter's heads share num_classes.");
            auxChannels = (int)auxSeg.shape[1];
            var auxIn = Need(sd, "auxiliary_head.convs.0.conv.weight", what).shape[1];
            if (auxIn != embed)
                throw new CheckpointException(
                    $"auxiliary_head.convs.0 takes {auxIn} channels; the BEiT segmenter feeds the auxiliary head a {embed}-channel neck output.");
            notes.FromWeights("use_aux_head", true, "auxiliary_head.conv_seg is present (one 3×3 conv, auxiliary_head.convs.0, no input concatenation)");
            notes.FromWeights("aux_channels", auxChannels, "columns of auxiliary_head.conv_seg.weight");
            notes.Defaulted("aux_in_index", defaults.AuxInIndex,
                "which neck output feeds the auxiliary head is not recorded; the published configs use 2 (training only)");
        }
        else
        {
            notes.FromWeights("use_aux_head", false, "no auxiliary_head.* (the auxiliary FCN head is used only for training)");
            notes.Defaulted("aux_channels", auxChannels, "no auxiliary head in the weights; the width of the BEiT configs, should one be trained");
            notes.Defaulted("aux_in_index", defaults.AuxInIndex, "no auxiliary head in the weights; the published configs use 2");
        }
        notes.Defaulted("aux_loss_weight", defaults.AuxLossWeight, "weight of the auxiliary loss (training only)");
        notes.Defaulted("ignore_index", defaults.IgnoreIndex, "label value excluded from the loss (training only)");

        return new SegmentationConfig
        {
            Backbone = new VitConfig
            {
                ImgSize = b.ImgSize, PatchSize = b.PatchSize, InChans = b.InChans, NumClasses = 0, EmbedDim = b.EmbedDim,
                Depth = b.Depth, NumHeads = b.NumHeads, MlpRatio = b.MlpRatio, QkvBias = b.QBias, InitValues = b.LayerScale ? 0.1 : 0,
                AttnHeadDim = b.AttnHeadDim, UseAbsPosEmb = b.AbsPos, UseRelPosBias = b.PerLayerTable, UseSharedRelPosBias = b.SharedTable,
            },
            OutIndices = outIndices, NumClasses = numClasses, Channels = channels, PoolScales = poolScales,
            AuxChannels = auxChannels, AuxInIndex = defaults.AuxInIndex, DropoutRatio = defaults.DropoutRatio,
            AlignCorners = defaults.AlignCorners, UseAuxHead = useAux, AuxLossWeight = defaults.AuxLossWeight, IgnoreIndex = defaults.IgnoreIndex,
            OutputStride = outputStride,
        };
    }

    /// <summary>
    /// The necks <see cref="BeitSegmentationBackbone"/> has for the patch size: patch 16 fpn1 = deconv (0), BatchNorm (1),
    /// GELU, deconv (3) and fpn2 = deconv (0); patch 8 fpn1 = deconv (0) only (the other levels are identity / max-pool);
    /// patch 4 none, or with output stride 2 fpn1 = deconv (0), BatchNorm (1), GELU.
    /// </summary>
    private static void CheckNecks(IReadOnlyDictionary<string, Tensor> sd, int patch, int outputStride)
    {
        string[] necks = patch switch
        {
            16 => new[] { "backbone.fpn1.0.", "backbone.fpn1.1.", "backbone.fpn1.3.", "backbone.fpn2.0." },
            8 => new[] { "backbone.fpn1.0." },
            4 when outputStride == 2 => new[] { "backbone.fpn1.0.", "backbone.fpn1.1." },
            4 => Array.Empty<string>(),
            _ => throw new CheckpointException(
                $"The segmentation backbone has {patch} px patches (backbone.patch_embed.proj.weight); the BEiT segmentation " +
                "backbone defines feature-pyramid necks for patch sizes 16 and 8 (and BeitV2 for 4)."),
        };
        var missing = necks.Where(n => !sd.ContainsKey(n + "weight")).ToList();
        var extra = sd.Keys.Where(k => k.StartsWith("backbone.fpn", StringComparison.Ordinal)
                                       && !necks.Any(n => k.StartsWith(n, StringComparison.Ordinal))).Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new CheckpointException(
                $"The backbone's necks do not match its {patch} px patches: the BEiT segmentation backbone has " +
                (patch switch
                {
                    16 => "fpn1 = deconvolution + BatchNorm + GELU + deconvolution and fpn2 = deconvolution (backbone.fpn1.{0,1,3}.*, backbone.fpn2.0.*)",
                    8 => "only fpn1 = deconvolution (backbone.fpn1.0.*)",
                    _ when outputStride == 2 => "with output stride 2 only fpn1 = deconvolution + BatchNorm + GELU (backbone.fpn1.{0,1}.*)",
                    _ => "no neck parameters (identity and max-pools)",
                }) +
                (missing.Count > 0 ? $"; missing: {string.Join(", ", missing.Select(n => n + "weight"))}" : "") +
                (extra.Count > 0 ? $"; unexpected: {string.Join(", ", extra.Take(6))}{(extra.Count > 6 ? ", …" : "")}" : "") + ".");
    }

    // ---------------------------------------------------------------- helpers

    private static DeducedModel Finish(ModelEntry entry, object deduced, JsonObject? over, DeductionNotes notes)
    {
        var config = deduced;
        var overridden = new List<(string, JsonNode?)>();
        if (over is not null)
        {
            var node = JsonSerializer.SerializeToNode(deduced, entry.ConfigType, ModelJson.Options)!.AsObject();
            overridden = ConfigOverrides.Merge(node, over);
            ConfigOverrides.CheckPatchGrid(node);
            config = entry.ReadConfig(JsonSerializer.SerializeToElement(node));
        }
        entry.Validate(config);
        var (noteList, defaulted) = notes.Finish(overridden);
        return new DeducedModel(entry.Kind, config, entry.WriteConfig(config), noteList, defaulted);
    }

    internal static void ValidateClip(ClipVisionConfig c)
    {
        VitConfig.Require(c.InputResolution > 0 && c.PatchSize > 0 && c.InputResolution % c.PatchSize == 0,
            $"input_resolution {c.InputResolution} must be a positive multiple of patch_size {c.PatchSize}");
        VitConfig.Require(c.Width > 0 && c.Layers > 0 && c.Heads > 0 && c.OutputDim > 0, "sizes must be positive");
        VitConfig.Require(c.Width % c.Heads == 0, $"width {c.Width} must be divisible by heads {c.Heads}");
    }

    internal static void ValidateDino(DinoConfig c)
    {
        VitConfig.Require(c.ImgSize > 0 && c.PatchSize > 0 && c.ImgSize % c.PatchSize == 0,
            $"img_size {c.ImgSize} must be a positive multiple of patch_size {c.PatchSize}");
        VitConfig.Require(c.EmbedDim > 0 && c.Depth > 0 && c.NumHeads > 0 && c.NumClasses >= 0, "sizes must be positive");
        VitConfig.Require(c.EmbedDim % c.NumHeads == 0, $"embed_dim {c.EmbedDim} must be divisible by num_heads {c.NumHeads}");
    }

    /// <summary>Teachers load as their own loaders do: teacher_model. stripped, only their keys, float32.</summary>
    internal static void LoadTeacher(nn.Module module, IReadOnlyDictionary<string, Tensor> sd, string keep, string what)
    {
        var weights = TeacherKeys.Visual(sd, keep);
        try
        {
            StateDictLoader.Load(module, weights, what);
        }
        finally
        {
            // Dispose only the float32 copies TeacherKeys made, never the caller's tensors.
            var originals = new HashSet<Tensor>(sd.Values, ReferenceEqualityComparer.Instance);
            foreach (var t in weights.Values)
                if (!originals.Contains(t))
                    t.Dispose();
        }
    }

    private static Tensor Need(IReadOnlyDictionary<string, Tensor> sd, string key, string what, string prefix = "") =>
        sd.TryGetValue(key, out var t) ? t : throw new CheckpointException($"The {what} needs '{prefix}{key}', which the state dict does not have.");

    /// <summary>Highest N in keys "prefix.N.…" plus one (0 when there is none).</summary>
    private static int CountIndexed(IEnumerable<string> keys, string prefix)
    {
        var max = -1;
        foreach (var k in keys)
        {
            if (!k.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var rest = k.AsSpan(prefix.Length);
            var dot = rest.IndexOf('.');
            if (dot > 0 && int.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out var i)) max = Math.Max(max, i);
        }
        return max + 1;
    }

    /// <summary>G from a token count 1 + G².</summary>
    private static int GridFromTokens(long tokens, string key)
    {
        var n = tokens - 1;
        var g = (int)Math.Round(Math.Sqrt(n));
        if (n <= 0 || (long)g * g != n) throw new CheckpointException($"'{key}' has {tokens} tokens, which is not 1 + G² for a square G×G grid.");
        return g;
    }

    /// <summary>hidden / width, nudged so that the model's (long)(width · ratio) gives back exactly <paramref name="hidden"/>.</summary>
    private static double MlpRatio(long hidden, int width)
    {
        var r = (double)hidden / width;
        if ((long)(width * r) < hidden) r = Math.BitIncrement(r);
        return r;
    }

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
