using System.Text.RegularExpressions;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// Text a client can read (problem details, job errors, job log lines) must not carry absolute server
/// paths, host names, process ids or .NET exception type names: paths under the data directory become
/// relative to it, other absolute paths and exception type names are replaced by words. The full text
/// stays in the server log.
/// </summary>
public static partial class ClientText
{
    /// <summary>The data directory's absolute path, set once at start-up (null: nothing to relativise).</summary>
    public static string? DataRoot { get; set; }

    [GeneratedRegex(@"\b(?:System|Microsoft|TorchSharp|BeitV2|Npgsql|Hangfire|SixLabors)(?:\.[A-Za-z0-9_]+)*\.([A-Za-z0-9_]*Exception)\b")]
    private static partial Regex QualifiedException();

    // A bare type name ("InvalidImageContentException: Input stream…"): before a colon the message that follows says
    // it all, so the name is dropped; elsewhere it becomes words.
    [GeneratedRegex(@"\b[A-Z][A-Za-z0-9_]*Exception\b(?<colon>:\s*)?")]
    private static partial Regex BareException();

    [GeneratedRegex(@"(?<![\w.:/])/(?:[\w.+@{}-]+/)*[\w.+@{}-]+")]
    private static partial Regex AbsolutePath();

    public static string Scrub(string? text)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        var root = DataRoot;
        if (root is { Length: > 1 })
        {
            var trimmed = root.TrimEnd('/');
            text = text.Replace(trimmed + "/", "", StringComparison.Ordinal).Replace(trimmed, ".", StringComparison.Ordinal);
        }
        text = QualifiedException().Replace(text, "an internal error");
        text = BareException().Replace(text, m => m.Groups["colon"].Success ? "" : "an internal error");
        if (Environment.MachineName.Length >= 4) text = text.Replace(Environment.MachineName, "the server", StringComparison.OrdinalIgnoreCase);
        // Anything still absolute lies outside the data directory: not the client's business.
        // Route paths of this API (POST /api/v1/models/import) are advice, not server paths.
        return AbsolutePath().Replace(text, m => m.Value.Count(c => c == '/') >= 2 && !IsRoute(m.Value) ? "(a server path)" : m.Value);
    }

    private static bool IsRoute(string path) =>
        path.StartsWith("/api/", StringComparison.Ordinal) || path.StartsWith("/health/", StringComparison.Ordinal)
        || path.StartsWith("/hubs/", StringComparison.Ordinal) || path.StartsWith("/swagger/", StringComparison.Ordinal);
}
