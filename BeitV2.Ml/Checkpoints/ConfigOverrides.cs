using System.Text.Json;
using System.Text.Json.Nodes;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// A user's config override: a JSON object in the reference's keyword names, merged recursively
/// into the inferred config (objects merge key by key, anything else replaces).
/// </summary>
internal static class ConfigOverrides
{
    /// <summary>The override as a mutable tree; null when absent. Anything but an object is an error.</summary>
    public static JsonObject? Parse(JsonElement? overrides)
    {
        if (overrides is not { } e || e.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"The config override must be a JSON object, not a {e.ValueKind.ToString().ToLowerInvariant()}.");
        return JsonNode.Parse(e.GetRawText())!.AsObject();
    }

    public static JsonObject? Child(JsonObject? o, string name) => o?[name] as JsonObject;

    /// <summary>An integer the override sets (null when absent or not an integer; a bad value fails later, at deserialisation).</summary>
    public static int? Int(JsonObject? o, string name) =>
        o?[name] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;

    /// <summary>Merges <paramref name="source"/> into <paramref name="target"/>; returns the replaced paths and values.</summary>
    public static List<(string Path, JsonNode? Value)> Merge(JsonObject target, JsonObject source, string path = "")
    {
        var replaced = new List<(string, JsonNode?)>();
        foreach (var (key, value) in source)
        {
            var p = path.Length == 0 ? key : path + "." + key;
            if (value is JsonObject sub && target[key] is JsonObject existing)
            {
                replaced.AddRange(Merge(existing, sub, p));
                continue;
            }
            target[key] = value?.DeepClone();
            replaced.Add((p, value));
        }
        return replaced;
    }
}
