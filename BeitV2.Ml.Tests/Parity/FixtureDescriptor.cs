using System.Text.Json;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>One io tensor of a fixture: its role, and how it must be compared.</summary>
public sealed record FixtureIo(string Name, string Role, long[] Shape, string DType, bool Exact, double? StrictAtol, double? StrictRtol);

/// <summary>
/// A reference fixture descriptor (<c>&lt;stem&gt;.json</c>): which model it designates (its
/// <c>name</c> field), the constructor config, and the io tensors in <c>&lt;stem&gt;.io.*</c>.
/// </summary>
public sealed class FixtureDescriptor
{
    public static readonly string[] ModelKinds = { "vit_cls", "mim", "vqkd", "clip_teacher", "dino_teacher" };

    public required string Stem { get; init; }
    public required string Kind { get; init; }
    public required JsonElement Config { get; init; }
    public required JsonElement Root { get; init; }
    public required IReadOnlyList<FixtureIo> Io { get; init; }

    public string WeightsPth => Path.Combine(FixturePaths.ReferenceDir, Stem + ".pth");
    public string WeightsSafetensors => Path.Combine(FixturePaths.ReferenceDir, Stem + ".weights.safetensors");
    public string IoSafetensors => Path.Combine(FixturePaths.ReferenceDir, Stem + ".io.safetensors");

    public override string ToString() => Stem;

    /// <summary>Every descriptor in the fixture folder whose <c>name</c> is a model kind.</summary>
    public static IEnumerable<FixtureDescriptor> All()
    {
        foreach (var file in Directory.EnumerateFiles(FixturePaths.ReferenceDir, "*.json").Order(StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            var root = doc.RootElement.Clone();
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out var n)) continue;
            var kind = n.GetString() ?? "";
            if (!ModelKinds.Contains(kind) || !root.TryGetProperty("config", out var config)) continue;
            yield return new FixtureDescriptor
            {
                Stem = Path.GetFileNameWithoutExtension(file),
                Kind = kind,
                Config = config,
                Root = root,
                Io = root.GetProperty("io").EnumerateArray().Select(ParseIo).ToList(),
            };
        }
    }

    public static FixtureDescriptor Load(string stem) => All().Single(d => d.Stem == stem);

    private static FixtureIo ParseIo(JsonElement e)
    {
        var tol = e.TryGetProperty("tolerance", out var t) && t.ValueKind == JsonValueKind.Object ? t : default;
        bool exact = tol.ValueKind == JsonValueKind.Object && tol.TryGetProperty("compare", out var c) && c.GetString() == "exact";
        double? Get(string p) => tol.ValueKind == JsonValueKind.Object && tol.TryGetProperty(p, out var v) ? v.GetDouble() : null;
        return new FixtureIo(
            e.GetProperty("name").GetString()!,
            e.GetProperty("role").GetString()!,
            e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray(),
            e.GetProperty("dtype").GetString()!,
            exact, Get("strict_atol"), Get("strict_rtol"));
    }

    /// <summary>The io tensors (inputs and reference outputs) by name.</summary>
    public Dictionary<string, Tensor> LoadIo() => Safetensors.LoadStateDict(IoSafetensors);
}
