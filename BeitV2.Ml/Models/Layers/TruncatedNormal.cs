using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// In-place truncated normal initialisation, as timm's / PyTorch's <c>trunc_normal_</c> (which the
/// reference uses for every from-scratch weight): inverse-CDF sampling of N(mean, std²) restricted
/// to [a, b], with absolute cut-offs.
/// </summary>
/// <remarks>
/// Do not use TorchSharp's <c>nn.init.trunc_normal_</c> (0.107): its native code multiplies by the
/// mean and adds the std (and drops the √2), so with mean 0 it fills the tensor with the constant
/// <c>std</c>. Every from-scratch BEiT weight was then 0.02 everywhere, every channel identical, and
/// the model could not learn anything but its last layers (GradientTests found it).
/// </remarks>
public static class TruncatedNormal
{
    /// <summary>Fills <paramref name="tensor"/> in place, without recording gradients, and returns it.</summary>
    public static Tensor Fill_(Tensor tensor, double mean, double std, double a, double b)
    {
        if (!(std > 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "std must be positive");
        if (!(a < b)) throw new ArgumentException($"The cut-offs must satisfy a < b, got a = {a}, b = {b}.");
        using var _ = no_grad();
        var lower = NormalCdf((a - mean) / std);
        var upper = NormalCdf((b - mean) / std);
        // Uniform on [2l−1, 2u−1], then erfinv gives a standard normal truncated to [(a−μ)/σ, (b−μ)/σ] / √2.
        tensor.uniform_(2 * lower - 1, 2 * upper - 1);
        tensor.erfinv_();
        tensor.mul_(std * Math.Sqrt(2.0));
        tensor.add_(mean);
        tensor.clamp_(a, b);
        return tensor;
    }

    /// <summary>Φ(x), the standard normal CDF, in float64.</summary>
    internal static double NormalCdf(double x)
    {
        using var t = tensor(x / Math.Sqrt(2.0), dtype: float64);
        using var erf = t.erf();
        return (1.0 + erf.item<double>()) / 2.0;
    }
}
