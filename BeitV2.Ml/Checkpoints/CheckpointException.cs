namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// A checkpoint that cannot be used: unreadable file, or keys/shapes that do not fit the model.
/// The message names the offending keys so the user can see what kind of file they passed.
/// </summary>
public sealed class CheckpointException : Exception
{
    public IReadOnlyList<string> MissingKeys { get; }
    public IReadOnlyList<string> UnexpectedKeys { get; }
    public IReadOnlyList<string> ShapeMismatches { get; }

    public CheckpointException(string message, Exception? inner = null) : base(message, inner)
    {
        MissingKeys = Array.Empty<string>();
        UnexpectedKeys = Array.Empty<string>();
        ShapeMismatches = Array.Empty<string>();
    }

    /// <param name="what">the model, for the message (e.g. "BEiT vision transformer").</param>
    /// <param name="missing">model keys the checkpoint lacks.</param>
    /// <param name="unexpected">checkpoint keys the model lacks.</param>
    /// <param name="shapes">keys present in both with different shapes, with both shapes.</param>
    /// <param name="hint">an explanation appended to the message when the pattern of keys is a known mistake.</param>
    public CheckpointException(string what, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes,
        string? hint = null)
        : base(Describe(what, missing, unexpected, shapes) + (string.IsNullOrEmpty(hint) ? "" : " " + hint))
    {
        MissingKeys = missing;
        UnexpectedKeys = unexpected;
        ShapeMismatches = shapes;
    }

    private static string Describe(string what, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes)
    {
        static string List(IReadOnlyList<string> keys) =>
            string.Join(", ", keys.Take(12)) + (keys.Count > 12 ? $", … ({keys.Count} in all)" : "");
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"missing keys: {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"unexpected keys: {List(unexpected)}");
        if (shapes.Count > 0) parts.Add($"shape mismatches: {List(shapes)}");
        return $"The checkpoint does not fit the {what}: {string.Join("; ", parts)}.";
    }
}
