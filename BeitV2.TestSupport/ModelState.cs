using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.TestSupport;

/// <summary>Snapshots of a model's parameters and buffers, and comparisons against them.</summary>
public static class ModelState
{
    /// <summary>Every parameter and buffer, cloned to the CPU.</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone());

    public static void AssertIdentical(Dictionary<string, Tensor> expected, nn.Module actual)
    {
        var sd = actual.state_dict();
        Assert.Equal(expected.Keys.Order(), sd.Keys.Order());
        foreach (var (k, v) in expected)
        {
            using var a = sd[k].detach().cpu();
            Assert.True(v.dtype == a.dtype && v.shape.SequenceEqual(a.shape), $"{k}: dtype/shape differ");
            using var eq = v.eq(a).all();
            Assert.True(eq.item<bool>(), $"{k} differs between the uninterrupted and the resumed run");
        }
    }

    public static bool AnyDifferent(Dictionary<string, Tensor> before, nn.Module after, Func<string, bool>? filter = null)
    {
        var sd = after.state_dict();
        foreach (var (k, v) in before)
        {
            if (filter is not null && !filter(k)) continue;
            using var a = sd[k].detach().cpu();
            using var eq = v.eq(a).all();
            if (!eq.item<bool>()) return true;
        }
        return false;
    }

    public static void Dispose(Dictionary<string, Tensor> snapshot)
    {
        foreach (var t in snapshot.Values) t.Dispose();
    }
}
