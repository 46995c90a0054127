using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// Stochastic depth per sample: in training, each sample's residual branch is dropped with
/// probability p and kept samples are scaled by 1/(1-p). Identity in eval mode or when p = 0.
/// </summary>
public sealed class DropPath : ExplicitModule<Tensor, Tensor>
{
    public double P { get; }

    public DropPath(double p) : base(nameof(DropPath)) => P = p;

    public override Tensor forward(Tensor x)
    {
        if (P == 0.0 || !training) return x.alias();
        var keep = 1.0 - P;
        var shape = new long[x.dim()];
        shape[0] = x.shape[0];
        for (var i = 1; i < shape.Length; i++) shape[i] = 1;
        using var random = rand(shape, dtype: x.dtype, device: x.device);
        using var mask = (random + keep).floor_();
        return x.div(keep).mul_(mask);
    }
}
