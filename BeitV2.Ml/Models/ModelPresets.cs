using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;

namespace BeitV2.Ml.Models;

/// <summary>
/// Named model sizes, in the spirit of timm's registered model names: one name picks the config of
/// every kind of model at that size, so a tokenizer, a MIM model, a classifier and a segmenter of the
/// same name fit together (same image and patch size where the pipeline chains them).
/// </summary>
/// <remarks>
/// <c>micro</c> is test-sized (seconds on a CPU), <c>small</c> is the size of the bundled default models
/// (Fashion-MNIST, 28 px), <c>tiny</c> is ViT-Ti/16 and <c>base</c> is the published ViT-B/16 recipe.
/// The tokenizer has no tiny size: <c>tiny</c> and <c>base</c> both give the base VQ-KD.
/// </remarks>
public static class ModelPresets
{
    public const string Micro = "micro";
    public const string Small = "small";
    public const string Tiny = "tiny";
    public const string Base = "base";
    /// <summary>ViT-L/16: listed in the model catalogue for imports and code, not offered to jobs.</summary>
    public const string Large = "large";

    /// <summary>Every preset name, smallest first.</summary>
    public static IReadOnlyList<string> Names { get; } = [Micro, Small, Tiny, Base];

    /// <summary>A classifier (or, with <paramref name="numClasses"/> 0, a backbone).</summary>
    public static VitConfig Vit(string name, int numClasses) => Check(name) switch
    {
        Micro => VitConfig.Micro(numClasses),
        Small => VitConfig.Small(numClasses),
        Tiny => VitConfig.Tiny(numClasses),
        _ => VitConfig.Base(numClasses),
    };

    /// <summary>A MIM pretraining model predicting the codes of a tokenizer with <paramref name="vocabSize"/> codes.</summary>
    public static MimConfig Mim(string name, int vocabSize) => Check(name) switch
    {
        Micro => MimConfig.Micro(vocabSize),
        Small => MimConfig.Small(vocabSize),
        Tiny => MimConfig.Tiny(vocabSize),
        _ => MimConfig.Base() with { VocabSize = vocabSize },
    };

    /// <summary>
    /// A VQ-KD tokenizer with <paramref name="codebookSize"/> codes whose decoder regresses a teacher's
    /// <paramref name="teacherDim"/>-wide features (a teacher of this library, not the CLIP model named in the config).
    /// </summary>
    public static VqkdConfig Vqkd(string name, int teacherDim, int codebookSize) => Check(name) switch
    {
        Micro => VqkdConfig.Micro(decoderOutDim: teacherDim, nEmbed: codebookSize),
        Small => VqkdConfig.Small(teacherDim, codebookSize),
        _ => VqkdConfig.Base1xClip() with { DecoderOutDim = teacherDim, NEmbed = codebookSize, TeacherModelType = "none" },
    };

    /// <summary>A UperNet segmenter; <c>small</c> and <c>tiny</c> put the micro heads on their backbone (<see cref="SegmentationConfig.FromBackbone"/>).</summary>
    public static SegmentationConfig Segmenter(string name, int numClasses) => Check(name) switch
    {
        Micro => SegmentationConfig.Micro(numClasses),
        Small => SegmentationConfig.FromBackbone(VitConfig.Small(0), numClasses),
        Tiny => SegmentationConfig.FromBackbone(VitConfig.Tiny(0), numClasses),
        _ => SegmentationConfig.Base(numClasses),
    };

    // The views below are the model catalogue's presets (BeitV2.Ml.Catalog.ModelCatalog): the job sizes plus large.

    /// <summary>The classifier presets by name, each config's own default class count.</summary>
    public static IReadOnlyDictionary<string, VitConfig> Vits { get; } = new Dictionary<string, VitConfig>
    {
        [Micro] = VitConfig.Micro(), [Small] = VitConfig.Small(), [Tiny] = VitConfig.Tiny(), [Base] = VitConfig.Base(),
        [Large] = VitConfig.Large(),
    };

    /// <summary>The MIM presets by name, each with its own default vocabulary.</summary>
    public static IReadOnlyDictionary<string, MimConfig> Mims { get; } = new Dictionary<string, MimConfig>
    {
        [Micro] = MimConfig.Micro(), [Small] = MimConfig.Small(), [Tiny] = MimConfig.Tiny(), [Base] = MimConfig.Base(),
        [Large] = MimConfig.Large(),
    };

    /// <summary>The tokenizer presets by name, regressing the 512-wide features of CLIP ViT-B/16 (the reference's teacher).</summary>
    public static IReadOnlyDictionary<string, VqkdConfig> Vqkds { get; } = new Dictionary<string, VqkdConfig>
    {
        [Micro] = VqkdConfig.Micro(), [Small] = VqkdConfig.Small(decoderOutDim: 512), [Base] = VqkdConfig.Base1xClip(),
    };

    /// <summary>The segmenter presets by name, with the ADE20K class count of the reference (150).</summary>
    public static IReadOnlyDictionary<string, SegmentationConfig> Segmenters { get; } =
        Names.Select(n => (n, Segmenter(n, numClasses: 150))).Append((Large, SegmentationConfig.Large()))
            .ToDictionary(p => p.Item1, p => p.Item2);

    private static string Check(string name) => Names.Contains(name)
        ? name
        : throw new ArgumentException($"Unknown model preset '{name}'; the presets are {string.Join(", ", Names)}.", nameof(name));
}
