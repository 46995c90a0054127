using System.Collections;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BeitV2.TestSupport;

/// <summary>
/// Shared helpers for the checkpoint-loader tests: the reference fixtures (raw state dicts and
/// configs), a scratch folder, and writers for the file layouts official checkpoints come in.
/// </summary>
public static class CheckpointFixtures
{
    public static string Pth(string name) => Path.Combine(FixturePaths.ReferenceDir, name + ".pth");

    /// <summary>The fixture's state dict exactly as stored (prefixes and index buffers included).</summary>
    public static Dictionary<string, Tensor> Raw(string name) => StateDictFile.Read(Pth(name));

    public static T Config<T>(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.ReferenceDir, name + ".json")));
        return ModelJson.Deserialize<T>(doc.RootElement.GetProperty("config"), name);
    }

    public static VitConfig VitCls() => Config<VitConfig>("vit_cls");

    public static MimConfig Mim() => Config<MimConfig>("mim");

    /// <summary>Writes a PyTorch zip pickle (what <c>torch.save</c> writes) holding <paramref name="root"/>.</summary>
    public static void WritePth(string path, IDictionary root) => PyTorchPickler.PickleStateDict(path, root);

    /// <summary>A copy of a state dict with every tensor cloned (contiguous, so the pickler writes it correctly).</summary>
    public static Dictionary<string, Tensor> Copy(IReadOnlyDictionary<string, Tensor> sd, Func<string, string>? rename = null) =>
        sd.ToDictionary(kv => rename?.Invoke(kv.Key) ?? kv.Key, kv => kv.Value.contiguous().clone(), StringComparer.Ordinal);

    /// <summary>A state dict of detached CPU copies of a module's tensors.</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone(), StringComparer.Ordinal);

    /// <summary>Asserts the module holds exactly <paramref name="expected"/>'s values under the same keys.</summary>
    public static void AssertWeightsEqual(IReadOnlyDictionary<string, Tensor> expected, nn.Module module, Func<string, bool>? only = null)
    {
        var actual = module.state_dict();
        var compared = 0;
        foreach (var (k, want) in expected)
        {
            if (only is not null && !only(k)) continue;
            Assert.True(actual.TryGetValue(k, out var got), $"model has no {k}");
            if (want.dtype == float32) Assert.True(got.dtype == float32, $"{k}: dtype {got.dtype}, expected float32");
            Assert.True(Same(want.to_type(got.dtype), got), $"{k} differs from the expected value");
            compared++;
        }
        Assert.True(compared > 0, "nothing compared");
    }

    public static void AssertEqual(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        if (!Same(expected, actual))
            Assert.Fail($"{what}: values differ (max |diff| {(expected.to_type(float64) - actual.to_type(float64)).abs().max().item<double>():g3})");
    }

    /// <summary>Same shape and bit-for-bit equal values (−0 equals +0).</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }

    public static Tensor Images(int size, int batch = 2, long seed = 7)
    {
        var g = new Generator().manual_seed(seed);
        return rand(new long[] { batch, 3, size, size }, generator: g);
    }
}
