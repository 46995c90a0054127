using BeitV2.Ml.Catalog;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// The names of the model kinds in package manifests, as the reference fixtures name them
/// (<c>vit_cls</c>, <c>mim</c>, <c>vqkd</c>, <c>clip_teacher</c>, <c>dino_teacher</c>), plus
/// <c>segmenter</c> (UperNet + BEiT backbone). What each kind is lives in <see cref="ModelCatalog"/>.
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
    /// <summary>A small convolutional classifier standing in for CLIP / DINO as the VQ-KD teacher (<c>stages.*</c>, <c>head.*</c>).</summary>
    public const string ConvTeacher = "conv_teacher";

    /// <summary>Every kind of the library's catalogue, in its order.</summary>
    public static IReadOnlyList<string> All => ModelCatalog.Default.Kinds;
}
