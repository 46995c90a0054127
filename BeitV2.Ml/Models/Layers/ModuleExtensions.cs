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

    /// <summary>
    /// In-place truncated normal init with PyTorch's algorithm (torch.nn.init.trunc_normal_: inverse
    /// CDF of a uniform sample between the bounds' CDF values, then clamp). TorchSharp 0.107's own
    /// <c>nn.init.trunc_normal_</c> fills the tensor with a constant (observed with mean 0, std 0.02,
    /// bounds ±2: every entry 0.02).
    /// </summary>
    public static Tensor TruncNormal_(Tensor tensor, double mean, double std, double a, double b)
    {
        using var _ = no_grad();
        static double Cdf(double x)
        {
            using var t = torch.tensor(x / Math.Sqrt(2.0), float64);
            using var e = t.erf();
            return (1.0 + e.item<double>()) / 2.0;
        }
        double l = Cdf((a - mean) / std), u = Cdf((b - mean) / std);
        tensor.uniform_(2 * l - 1, 2 * u - 1);
        tensor.erfinv_();
        tensor.mul_(std * Math.Sqrt(2.0));
        tensor.add_(mean);
        tensor.clamp_(a, b);
        return tensor;
    }

    /// <summary>The drop-path rate of each of <paramref name="count"/> blocks: linspace(0, rate, count) as the reference computes it (in float32).</summary>
    public static double[] LinearRates(double rate, int count)
    {
        if (count <= 0) return Array.Empty<double>();
        using var t = linspace(0, rate, count, dtype: float32);
        return t.data<float>().Select(v => (double)v).ToArray();
    }
}
