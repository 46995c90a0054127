using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;

namespace BeitV2.Web.Registry;

/// <summary>
/// API kinds of model (the contract's <c>kind</c>), plus <c>teacher</c> for VQ-KD teachers, and the one table
/// that maps the catalogue's model kinds (<see cref="ModelCatalog"/>) to them.
/// </summary>
public static class ApiModelKinds
{
    public const string Tokenizer = "tokenizer";
    public const string Backbone = "backbone";
    public const string Classifier = "classifier";
    public const string Segmenter = "segmenter";
    public const string Pretrain = "pretrain";
    public const string Teacher = "teacher";

    public static readonly IReadOnlyList<string> All = new[] { Tokenizer, Backbone, Classifier, Segmenter, Pretrain, Teacher };

    /// <summary>Catalogue kind → API kind; a ViT is a classifier when it has a head, else a backbone.</summary>
    private static readonly IReadOnlyDictionary<string, Func<ModelShape, string>> ByModelKind =
        new Dictionary<string, Func<ModelShape, string>>(StringComparer.Ordinal)
        {
            [ModelKind.VitCls] = shape => shape.Classes is not null ? Classifier : Backbone,
            [ModelKind.Mim] = _ => Pretrain,
            [ModelKind.Vqkd] = _ => Tokenizer,
            [ModelKind.ClipTeacher] = _ => Teacher,
            [ModelKind.DinoTeacher] = _ => Teacher,
            [ModelKind.ConvTeacher] = _ => Teacher,
            [ModelKind.Segmenter] = _ => Segmenter,
        };

    /// <summary>The catalogue kinds the API knows.</summary>
    public static IReadOnlyCollection<string> ModelKinds => ByModelKind.Keys.ToList();

    /// <summary>The API kind of a model of catalogue kind <paramref name="modelKind"/> and shape <paramref name="shape"/>.</summary>
    /// <exception cref="CheckpointException">the API has no kind for it.</exception>
    public static string Of(string modelKind, ModelShape shape) =>
        ByModelKind.TryGetValue(modelKind, out var of) ? of(shape)
            : throw new CheckpointException($"The model kind '{modelKind}' has no API kind (expected one of {string.Join(", ", ByModelKind.Keys)}).");
}
