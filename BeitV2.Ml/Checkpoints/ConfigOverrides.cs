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
        CheckBounds(e, "", 0);
        return JsonNode.Parse(e.GetRawText())!.AsObject();
    }

    /// <summary>
    /// Limits on what an override may ask for, checked before anything is built: a model is allocated at its
    /// config's size before the weights are compared with it, so {"depth": 100000} would exhaust memory before
    /// failing. The limits are far above every published BEiT/CLIP/DINO model (ViT-g: 40 layers, 1408 wide, 16 heads).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, int> Limits = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["depth"] = 64, ["layers"] = 64, ["early_layers"] = 64, ["head_layers"] = 64,
        ["embed_dim"] = 4096, ["width"] = 4096, ["output_dim"] = 4096, ["attn_head_dim"] = 4096, ["codebook_embed_dim"] = 4096,
        ["decoder_out_dim"] = 4096, ["channels"] = 4096, ["aux_channels"] = 4096, ["mlp_ratio"] = 16, ["pool_scales"] = 64,
        ["num_heads"] = 64, ["heads"] = 64,
        ["img_size"] = 1024, ["input_resolution"] = 1024, ["patch_size"] = 1024,
        ["in_chans"] = 16, ["num_classes"] = 100_000, ["vocab_size"] = 65_536, ["n_embed"] = 65_536, ["n_code"] = 65_536,
    };

    /// <summary>The largest patch grid (img_size / patch_size squared) an override may lead to: 1024 px in 8 px patches.</summary>
    public const int MaxPatches = 128 * 128;

    private const int MaxNesting = 4, MaxProperties = 256;

    private static void CheckBounds(JsonElement e, string path, int nesting)
    {
        if (nesting > MaxNesting) throw Refused($"'{path}' is nested deeper than {MaxNesting} levels");
        var count = 0;
        foreach (var p in e.EnumerateObject())
        {
            if (++count > MaxProperties) throw Refused($"it sets more than {MaxProperties} values");
            var at = path.Length == 0 ? p.Name : path + "." + p.Name;
            if (p.Value.ValueKind == JsonValueKind.Object)
                CheckBounds(p.Value, at, nesting + 1);
            else if (Limits.TryGetValue(p.Name, out var max))
            {
                var values = p.Value.ValueKind == JsonValueKind.Array ? p.Value.EnumerateArray().ToList() : [p.Value];
                if (values.Count > 4) throw Refused($"'{at}' has {values.Count} values");
                foreach (var v in values)
                    if (v.ValueKind == JsonValueKind.Number && (!v.TryGetDouble(out var d) || d > max))
                        throw Refused($"'{at}' = {v.GetRawText()} is above the limit of {max}");
            }
            else if (p.Value.ValueKind == JsonValueKind.Array && p.Value.GetArrayLength() > 64)
                throw Refused($"'{at}' has {p.Value.GetArrayLength()} values");
        }
    }

    /// <summary>Checks the merged config: every (img_size or input_resolution, patch_size) pair gives at most <see cref="MaxPatches"/> patches.</summary>
    public static void CheckPatchGrid(JsonObject config, string path = "")
    {
        var size = FirstInt(config["img_size"]) ?? FirstInt(config["input_resolution"]);
        if (size is { } s && FirstInt(config["patch_size"]) is { } p && p > 0 && (long)(s / p) * (s / p) > MaxPatches)
            throw Refused($"{(path.Length == 0 ? "" : $"'{path}': ")}{s} px in {p} px patches is {(long)(s / p) * (s / p)} patches; the limit is {MaxPatches}");
        foreach (var (key, value) in config)
            if (value is JsonObject sub)
                CheckPatchGrid(sub, path.Length == 0 ? key : path + "." + key);
    }

    private static int? FirstInt(JsonNode? n) => n switch
    {
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonArray { Count: > 0 } a => FirstInt(a[0]),
        _ => null,
    };

    private static CheckpointException Refused(string why) => new($"The config override is refused: {why}.");

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
