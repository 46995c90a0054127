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

    public CheckpointException(string what, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes)
        : base(Describe(what, missing, unexpected, shapes))
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
