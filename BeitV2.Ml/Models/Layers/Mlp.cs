using BeitV2.Ml.Precision;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// The transformer MLP: fc1 → exact (erf) GELU → fc2 → dropout. As in the reference, there is no
/// dropout between the activation and fc2.
/// </summary>
public sealed class Mlp : ExplicitModule<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly Dropout drop;

    public Mlp(long dim, long hidden, double dropRate) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(dim, hidden);
        fc2 = nn.Linear(hidden, dim);
        drop = nn.Dropout(dropRate);
        register_module("fc1", fc1);
        register_module("fc2", fc2);
        register_module("drop", drop);
    }

    public override Tensor forward(Tensor x)
    {
        using var h = Autocast.Linear(fc1, x);
        using var a = nn.functional.gelu(h);
        using var o = Autocast.Linear(fc2, a);
        return drop.forward(o);
    }
}
