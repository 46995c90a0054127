using System.Text.RegularExpressions;

namespace BeitV2.Web.Registry;

/// <summary>
/// A model's short name, for pickers that have room for a few words: the <c>shortName</c> its package metadata
/// stores, else one derived from the full name ("VQ-KD tokenizer distilled from the teacher (fashion-small)" →
/// "VQ-KD tokenizer"). The full name is still shown on hover.
/// </summary>
public static partial class ModelNames
{
    /// <summary>Longer short names are cut at a word boundary and end with "…".</summary>
    public const int MaxLength = 32;

    // Where a descriptive name turns from what the model is into how it was made.
    private static readonly string[] Cuts = [" distilled ", " from ", " with ", " on ", " trained ", " for "];

    [GeneratedRegex(@"\s*\([^()]*\)\s*$")]
    private static partial Regex TrailingParenthesis();

    /// <summary>The short name: <paramref name="stored"/> when given, else derived from <paramref name="name"/>.</summary>
    public static string Short(string name, string? stored = null)
    {
        if (!string.IsNullOrWhiteSpace(stored)) return stored.Trim();
        var text = name.Trim();
        // "(fashion-small)", "(MIM, then fine-tuned)": the recipe, not the model.
        for (var stripped = TrailingParenthesis().Replace(text, ""); stripped.Length > 0 && stripped != text; stripped = TrailingParenthesis().Replace(text, ""))
            text = stripped;
        if (text.IndexOf(':') is > 0 and var colon) text = text[..colon];   // "the served classifier: fine-tune from …"
        foreach (var cut in Cuts)
            if (text.IndexOf(cut, StringComparison.OrdinalIgnoreCase) is > 0 and var at && text[..at].Contains(' '))
            {
                text = text[..at];
                break;
            }
        if (text.Length > MaxLength)
        {
            var space = text.LastIndexOf(' ', MaxLength - 1);
            text = (space > MaxLength / 2 ? text[..space] : text[..(MaxLength - 1)]) + "…";
        }
        text = text.Trim();
        if (text.Length == 0) return name;
        return char.ToUpperInvariant(text[0]) + text[1..];
    }
}
