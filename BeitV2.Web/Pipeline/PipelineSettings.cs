using System.Text.Json;
using BeitV2.Web.Errors;

namespace BeitV2.Web.Pipeline;

/// <summary>The <c>config</c> of a <c>pipeline</c> job: <c>preset</c> (<c>fashion-small</c> or <c>smoke</c>) and <c>seed</c>.</summary>
public sealed record PipelineSettings(string Preset = "fashion-small", int Seed = 0)
{
    public static PipelineSettings Parse(JsonElement? config)
    {
        var s = new PipelineSettings();
        if (config is not { } c || c.ValueKind == JsonValueKind.Null) return s;
        if (c.ValueKind != JsonValueKind.Object) throw new InvalidRequestException("'config' of a pipeline job must be a JSON object, e.g. {\"preset\": \"fashion-small\"}.");
        foreach (var p in c.EnumerateObject())
        {
            s = p.Name switch
            {
                "preset" when p.Value.ValueKind == JsonValueKind.String && PipelinePreset.Names.Contains(p.Value.GetString()!) => s with { Preset = p.Value.GetString()! },
                "preset" => throw new InvalidRequestException($"config.preset must be one of {string.Join(", ", PipelinePreset.Names)}, got {p.Value.GetRawText()}."),
                "seed" when p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var seed) && seed >= 0 => s with { Seed = seed },
                "seed" => throw new InvalidRequestException($"config.seed must be a non-negative integer, got {p.Value.GetRawText()}."),
                _ => throw new InvalidRequestException($"Unknown config key '{p.Name}' for a pipeline job. Known keys: preset, seed."),
            };
        }
        return s;
    }
}
