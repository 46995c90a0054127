using System.Text.RegularExpressions;

namespace BeitV2.Web.Registry;

/// <summary>
/// New model ids: short and readable, <c>{kind}-{what}-{6 hex}</c> (e.g. <c>classifier-fashion-2ea70c</c>), where
/// <c>what</c> is the training dataset when there is one (else the model's name), cut to a word or two. Ids made
/// before this scheme (the slug of the whole name) stay valid: an id is only ever checked for its characters.
/// </summary>
public static partial class ModelIds
{
    /// <summary>
    /// The bundled default models' ids before they were shortened, and their ids now: a script or link that still
    /// names an old id reaches the model on a registry seeded since. (Registries seeded before keep the old folders.)
    /// </summary>
    public static IReadOnlyDictionary<string, string> Renamed { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["vq-kd-tokenizer-distilled-from-the-teacher-fashi-263712"] = "tokenizer-fashion-263712",
        ["mim-pretraining-with-patch-aggregation-fashion-s-25c06b"] = "pretrain-fashion-25c06b",
        ["the-served-classifier-fine-tune-from-the-mim-bac-bbcace"] = "classifier-fashion-bbcace",
        ["upernet-segmenter-from-the-served-classifier-mim-a07be4"] = "segmenter-fashion-a07be4",
    };

    /// <summary>At most this many characters of the dataset or name, cut at a word boundary.</summary>
    private const int MaxQualifier = 12;

    [GeneratedRegex("[^a-z0-9]+")]
    private static partial Regex NonSlug();

    // An uploaded dataset's id ends with its own 6-hex suffix; the model id gets a fresh one.
    [GeneratedRegex("-[0-9a-f]{6}$")]
    private static partial Regex HexSuffix();

    /// <summary>An id for a model of API kind <paramref name="kind"/> trained on <paramref name="dataset"/> (or named <paramref name="name"/>).</summary>
    /// <param name="exists">Whether an id is taken; another suffix is drawn until it is not.</param>
    public static string New(string kind, string? dataset, string name, Func<string, bool> exists)
    {
        var what = Qualifier(dataset) ?? Qualifier(name);
        var prefix = what is null || what == kind ? kind : $"{kind}-{what}";
        string id;
        do id = $"{prefix}-{Guid.NewGuid().ToString("N")[..6]}";
        while (exists(id));
        return id;
    }

    /// <summary>The slug of <paramref name="text"/> without a trailing hex id, cut at a word boundary to <see cref="MaxQualifier"/> characters; null when nothing is left.</summary>
    internal static string? Qualifier(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var slug = HexSuffix().Replace(NonSlug().Replace(text.ToLowerInvariant(), "-").Trim('-'), "");
        if (slug.Length > MaxQualifier)
        {
            var cut = slug.LastIndexOf('-', MaxQualifier);
            slug = cut > 0 ? slug[..cut] : slug[..MaxQualifier];
        }
        slug = slug.Trim('-');
        return slug.Length == 0 ? null : slug;
    }
}
