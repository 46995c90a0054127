using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using static TorchSharp.torch;

namespace BeitV2.Ml.Catalog;

/// <summary>
/// The model kinds of the library and everything done by kind: packages (<see cref="ModelPackage"/>), training
/// checkpoints, architecture deduction on import, model descriptions and serving all look a kind up here instead
/// of switching on it. Adding a kind is one entry in <see cref="BuiltIn"/>.
/// </summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ModelEntry> byKind;

    /// <exception cref="ArgumentException">two entries share a kind.</exception>
    public ModelCatalog(IEnumerable<ModelEntry> entries)
    {
        Entries = entries.ToList();
        byKind = new Dictionary<string, ModelEntry>(StringComparer.Ordinal);
        foreach (var e in Entries)
            if (!byKind.TryAdd(e.Kind, e)) throw new ArgumentException($"The model kind '{e.Kind}' is registered twice.", nameof(entries));
        Kinds = Entries.Select(e => e.Kind).ToList();
    }

    /// <summary>The library's kinds (<see cref="BuiltIn"/>).</summary>
    public static ModelCatalog Default { get; } = new(BuiltIn());

    /// <summary>In registration order, which is also the order architecture deduction tries them in.</summary>
    public IReadOnlyList<ModelEntry> Entries { get; }
    public IReadOnlyList<string> Kinds { get; }

    /// <exception cref="CheckpointException">the kind is not in the catalogue.</exception>
    public ModelEntry this[string kind] => TryGet(kind, out var e) ? e
        : throw new CheckpointException($"Unknown model kind '{kind}' (expected one of {string.Join(", ", Kinds)}).");

    public bool TryGet(string kind, out ModelEntry entry) => byKind.TryGetValue(kind, out entry!);

    /// <summary>The entry of a built model, or null when it is not a catalogue model (e.g. a probe head).</summary>
    public ModelEntry? EntryOf(nn.Module module) => Entries.FirstOrDefault(e => e.Holds(module));

    /// <summary>The kind and config of a built model.</summary>
    /// <exception cref="ArgumentException">the module is not a model of any kind in the catalogue.</exception>
    public (ModelEntry Entry, object Config) Describe(nn.Module module)
    {
        var entry = EntryOf(module) ?? throw new ArgumentException($"{module.GetType().Name} is not a BeitV2 model.", nameof(module));
        return (entry, entry.ConfigOf(module));
    }

    /// <summary>What a built model can serve.</summary>
    /// <exception cref="ArgumentException">the module is not a model of any kind in the catalogue.</exception>
    public IReadOnlySet<Operation> OperationsOf(nn.Module module)
    {
        var (entry, config) = Describe(module);
        return entry.Operations(config);
    }

    /// <summary>The preprocessing a built model expects by default (what <see cref="ModelPackage.Save"/> writes); null when it is not served.</summary>
    public ModelPreprocessing? DefaultPreprocessing(nn.Module module)
    {
        var (entry, config) = Describe(module);
        return entry.DefaultPreprocessing(config);
    }

    /// <summary>
    /// A loaded package wrapped for serving, with its manifest's preprocessing (the kind's default for packages
    /// written before manifests carried it); null when its kind is not served.
    /// </summary>
    /// <exception cref="CheckpointException">the manifest names preprocessing this build cannot apply.</exception>
    public ServedModel? Serve(LoadedModel package)
    {
        var (entry, config) = Describe(package.Module);
        return entry.DefaultPreprocessing(config) is { } fallback
            ? entry.Serve(package.Module, package.Manifest.Preprocessing ?? fallback)
            : null;
    }

    /// <summary>The six kinds of the library, one entry each.</summary>
    public static IReadOnlyList<ModelEntry> BuiltIn() =>
    [
        new ModelEntry<VitConfig, BeitVisionTransformer>(ModelKind.VitCls)
        {
            New = c => new BeitVisionTransformer(c),
            ConfigOfModel = m => m.Config,
            LoadWeights = (m, sd) => VitCheckpoint.Load(m, sd),
            Describer = c => new ModelShape("beit-vit", c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, null, c.NumClasses > 0 ? c.NumClasses : null),
            Serves = c => c.NumClasses > 0
                ? new HashSet<Operation> { Operation.Features, Operation.Classify }
                : new HashSet<Operation> { Operation.Features },
            Serving = new(c => ModelPreprocessing.Centre(c.ImgSize, PixelNormalization.ImageNet), (m, p) => new ServedVit(m, p)),
            Onnx = VitOnnxExporter.Export,
            Presets = ModelPresets.Vits,
            Deduction = new(ArchitectureDeduction.IsBeitClassifier,
                "a BEiT v2 classifier or backbone (cls_token, patch_embed.proj.weight, blocks.N.*)",
                ArchitectureDeduction.Vit, c => c.Validate()),
        },
        new ModelEntry<MimConfig, BeitMim>(ModelKind.Mim)
        {
            New = c => new BeitMim(c),
            ConfigOfModel = m => m.Config,
            LoadWeights = (m, sd) => MimCheckpoint.Load(m, sd),
            Describer = c => new ModelShape("beitv2-mim", c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, c.VocabSize, null),
            Serves = _ => new HashSet<Operation> { Operation.Features },
            Serving = new(c => ModelPreprocessing.Centre(c.ImgSize, PixelNormalization.ImageNet), (m, p) => new ServedMim(m, p)),
            Onnx = MimOnnxExporter.Export,
            Presets = ModelPresets.Mims,
            Deduction = new(ArchitectureDeduction.IsMim, "a pretraining checkpoint (… + lm_head)",
                ArchitectureDeduction.Mim, c => c.Validate()),
        },
        new ModelEntry<VqkdConfig, VqkdTokenizer>(ModelKind.Vqkd)
        {
            New = c => new VqkdTokenizer(c),
            ConfigOfModel = m => m.Config,
            LoadWeights = (m, sd) => VqkdCheckpoint.Load(m, sd),
            Describer = c => new ModelShape("vqkd", c.Encoder.ImgSize, c.Encoder.PatchSize, c.Encoder.EmbedDim, c.Encoder.Depth, c.NEmbed, null),
            Serves = _ => new HashSet<Operation> { Operation.Tokens },
            // The tokenizer's own input mapping (modeling_vqkd.py pre_process) as a mean/std over [0, 1] pixels.
            Serving = new(c => ModelPreprocessing.Centre(c.Encoder.ImgSize, VqkdPreProcess.Normalization(c.ProcessType)),
                (m, p) => new ServedTokenizer(m, p)),
            Onnx = VqkdOnnxExporter.Export,
            Presets = ModelPresets.Vqkds,
            Deduction = new(ArchitectureDeduction.IsVqkd, "a VQ-KD tokenizer (encoder.*, decoder.*, quantize.*)",
                ArchitectureDeduction.Vqkd, c => c.Validate()),
        },
        new ModelEntry<ClipVisionConfig, ClipTeacher>(ModelKind.ClipTeacher)
        {
            New = c => new ClipTeacher(c),
            ConfigOfModel = m => m.Visual.Config,
            LoadWeights = (m, sd) => StateDictLoader.Load(m, sd, "CLIP image tower"),
            ImportWeights = (m, sd) => ArchitectureDeduction.LoadTeacher(m, sd, "visual.", "CLIP image tower"),
            Describer = c => new ModelShape("clip-vit", c.InputResolution, c.PatchSize, c.Width, c.Layers, null, null),
            Presets = new Dictionary<string, ClipVisionConfig> { ["base"] = ClipVisionConfig.ViTB16() },
            Deduction = new(ArchitectureDeduction.IsClip, "a CLIP image tower (visual.*)",
                ArchitectureDeduction.Clip, ArchitectureDeduction.ValidateClip),
        },
        new ModelEntry<DinoConfig, DinoVisionTransformer>(ModelKind.DinoTeacher)
        {
            New = c => new DinoVisionTransformer(c),
            ConfigOfModel = m => m.Config,
            LoadWeights = (m, sd) => StateDictLoader.Load(m, sd, "DINO ViT"),
            ImportWeights = (m, sd) => ArchitectureDeduction.LoadTeacher(m, sd, "", "DINO ViT"),
            Describer = c => new ModelShape("dino-vit", c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, null, null),
            Presets = new Dictionary<string, DinoConfig> { ["base"] = DinoConfig.ViTB16() },
            Deduction = new(ArchitectureDeduction.IsDino, "a DINO ViT (blocks.N.attn.qkv.bias)",
                ArchitectureDeduction.Dino, ArchitectureDeduction.ValidateDino),
        },
        new ModelEntry<ConvTeacherConfig, ConvTeacher>(ModelKind.ConvTeacher)
        {
            New = c => new ConvTeacher(c),
            ConfigOfModel = m => m.Config,
            LoadWeights = (m, sd) => StateDictLoader.Load(m, sd, "convolutional teacher"),
            Describer = c => new ModelShape("conv-teacher", c.ImgSize, c.PatchSize, c.OutputDim, c.Widths.Count, null, c.NumClasses),
            Presets = new Dictionary<string, ConvTeacherConfig> { ["fashion"] = ConvTeacherConfig.Fashion(), ["micro"] = ConvTeacherConfig.Micro() },
        },
        new ModelEntry<SegmentationConfig, BeitSegmenter>(ModelKind.Segmenter)
        {
            New = c => new BeitSegmenter(c),
            ConfigOfModel = m => m.Config,
            LoadWeights = (m, sd) => SegmenterCheckpoint.Load(m, sd),
            Describer = c => new ModelShape("beit-upernet", c.Backbone.ImgSize, c.Backbone.PatchSize, c.Backbone.EmbedDim, c.Backbone.Depth,
                null, c.NumClasses),
            Serves = _ => new HashSet<Operation> { Operation.Segment },
            // The mask must cover the whole image: resized, not cropped.
            Serving = new(c => ModelPreprocessing.FullResize(c.Backbone.ImgSize, PixelNormalization.ImageNet), (m, p) => new ServedSegmenter(m, p)),
            Onnx = SegmenterOnnxExporter.Export,
            Presets = ModelPresets.Segmenters,
            Deduction = new(ArchitectureDeduction.IsSegmenter, "an mmseg segmenter (backbone.*, decode_head.*)",
                ArchitectureDeduction.Segmenter, c => c.Validate()),
        },
    ];
}
