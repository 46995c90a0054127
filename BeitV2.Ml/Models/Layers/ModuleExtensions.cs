using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>Small helpers shared by the model classes.</summary>
internal static class ModuleExtensions
{
    /// <summary>A trainable parameter created from a tensor (the tensor is adopted, not copied).</summary>
    public static TorchSharp.Modules.Parameter Param(Tensor t, bool requiresGrad = true) => new(t, requiresGrad);

    /// <summary>LayerNorm over the last dimension with the reference's eps.</summary>
    public static TorchSharp.Modules.LayerNorm LayerNorm(long dim, double eps) => nn.LayerNorm(dim, eps);

    /// <summary>The drop-path rate of each of <paramref name="count"/> blocks: linspace(0, rate, count) as the reference computes it (in float32).</summary>
    public static double[] LinearRates(double rate, int count)
    {
        if (count <= 0) return Array.Empty<double>();
        using var t = linspace(0, rate, count, dtype: float32);
        return t.data<float>().Select(v => (double)v).ToArray();
    }

    /// <summary>
    /// Moves each distinct tensor once to the enclosing dispose scope (a tensor listed twice, such as the last block's
    /// output that is also kept as an intermediate, would otherwise be moved two scopes out).
    /// </summary>
    public static void MoveToOuterDisposeScope(IEnumerable<Tensor?> tensors)
    {
        var moved = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var t in tensors)
            if (t is not null && moved.Add(t)) t.MoveToOuterDisposeScope();
    }
}
