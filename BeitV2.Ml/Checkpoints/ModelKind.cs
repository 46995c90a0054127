using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// The model families of the library, named as the reference fixtures name them
/// (<c>vit_cls</c>, <c>mim</c>, <c>vqkd</c>, <c>clip_teacher</c>, <c>dino_teacher</c>), plus
/// <c>segmenter</c> (UperNet + BEiT backbone).
/// </summary>
public static class ModelKind
{
    public const string VitCls = "vit_cls";
    public const string Mim = "mim";
    public const string Vqkd = "vqkd";
    public const string ClipTeacher = "clip_teacher";
    public const string DinoTeacher = "dino_teacher";
    /// <summary>UperNet segmentation (mmseg files: <c>backbone.*</c>, <c>decode_head.*</c>, <c>auxiliary_head.*</c>).</summary>
    public const string Segmenter = "segmenter";

    public static readonly IReadOnlyList<string> All = new[] { VitCls, Mim, Vqkd, ClipTeacher, DinoTeacher, Segmenter };

    /// <summary>The kind and config of a model instance.</summary>
    public static (string Kind, object Config) Describe(nn.Module model) => model switch
    {
        BeitVisionTransformer m => (VitCls, m.Config),
        BeitMim m => (Mim, m.Config),
        VqkdTokenizer m => (Vqkd, m.Config),
        Models.Teachers.ClipTeacher m => (ClipTeacher, m.Visual.Config),
        DinoVisionTransformer m => (DinoTeacher, m.Config),
        BeitSegmenter m => (Segmenter, m.Config),
        _ => throw new ArgumentException($"{model.GetType().Name} is not a BeitV2 model."),
    };
}
