using System.Collections;
using System.Globalization;
using System.Text.Json.Nodes;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Collects, per config field (a JSON path such as <c>encoder.num_heads</c>), whether its value was
/// read from the weights or defaulted, and finally replaces those notes by the override's values.
/// </summary>
internal sealed class DeductionNotes
{
    private enum Source { FromWeights, Defaulted, Info }

    private sealed record Note(string? Field, Source Source, string Text, string? Value);

    private readonly List<Note> notes = new();

    public void FromWeights(string field, object? value, string how) =>
        notes.Add(new Note(field, Source.FromWeights, $"{field} = {Format(value)}: {how}", Format(value)));

    public void Defaulted(string field, object? value, string why) =>
        notes.Add(new Note(field, Source.Defaulted, $"{field} = {Format(value)} (default, not in the weights): {why}", Format(value)));

    public void Info(string text) => notes.Add(new Note(null, Source.Info, text, null));

    /// <summary>The final notes and defaulted fields, with every overridden field (or sub-tree) reported as such.</summary>
    public (IReadOnlyList<string> Notes, IReadOnlyList<string> Defaulted) Finish(IReadOnlyList<(string Path, JsonNode? Value)> overridden)
    {
        bool Covers(string path, string? field) =>
            field is not null && (field == path || field.StartsWith(path + ".", StringComparison.Ordinal));

        var result = new List<string>();
        foreach (var n in notes)
            if (!overridden.Any(o => Covers(o.Path, n.Field)))
                result.Add(n.Text);
        foreach (var (path, value) in overridden)
        {
            var json = value?.ToJsonString() ?? "null";
            var read = notes.FirstOrDefault(n => n.Field == path && n.Source == Source.FromWeights);
            var clash = read is not null && !SameValue(read.Value, json)
                ? $" (the weights say {read.Value}; loading may fail)"
                : "";
            result.Add($"{path} = {json}: from the config override{clash}");
        }
        var defaulted = notes.Where(n => n.Source == Source.Defaulted && !overridden.Any(o => Covers(o.Path, n.Field)))
            .Select(n => n.Field!).Distinct().ToList();
        return (result, defaulted);
    }

    private static bool SameValue(string? a, string b) =>
        a == b || (double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var x)
                   && double.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var y) && x == y);

    public static string Format(object? value) => value switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        string s => $"\"{s}\"",
        double d => d.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal),
        IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Format)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
