using BeitV2.Ml.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// Pre-norm transformer block with optional layer scale (unilm <c>modeling_finetune.Block</c>):
/// x += DropPath(γ₁ ⊙ Attn(LN₁(x))); x += DropPath(γ₂ ⊙ MLP(LN₂(x))). Without layer scale the
/// γ parameters do not exist (they are not ones).
/// </summary>
public sealed class Block : ExplicitModule<Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly DropPath dropPath;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;
    private readonly bool layerScale;

    public Block(int dim, int numHeads, double mlpRatio, bool qkvBias, double? qkScale, double drop, double attnDrop,
        double dropPathRate, double initValues, double normEps, (int H, int W)? window, int? attnHeadDim) : base(nameof(Block))
    {
        norm1 = ModuleExtensions.LayerNorm(dim, normEps);
        attn = new Attention(dim, numHeads, qkvBias, qkScale, attnDrop, drop, window, attnHeadDim);
        dropPath = new DropPath(dropPathRate);
        norm2 = ModuleExtensions.LayerNorm(dim, normEps);
        mlp = new Mlp(dim, (long)(dim * mlpRatio), drop);
        register_module("norm1", norm1);
        register_module("attn", attn);
        register_module("drop_path", dropPath);
        register_module("norm2", norm2);
        register_module("mlp", mlp);
        layerScale = initValues > 0;
        if (layerScale)
        {
            register_parameter("gamma_1", ModuleExtensions.Param(full(dim, initValues, dtype: float32)));
            register_parameter("gamma_2", ModuleExtensions.Param(full(dim, initValues, dtype: float32)));
        }
    }

    /// <summary>
    /// The block stack of a trunk (<c>blocks.0..depth-1</c>): drop path rising linearly over the blocks, per-layer
    /// relative tables over <paramref name="grid"/> when configured.
    /// </summary>
    public static TorchSharp.Modules.ModuleList<Block> StackFor(VitTrunkConfig c, (int H, int W) grid)
    {
        var dpr = ModuleExtensions.LinearRates(c.DropPathRate, c.Depth);
        var blocks = new TorchSharp.Modules.ModuleList<Block>();
        for (var i = 0; i < c.Depth; i++) blocks.Add(For(c, grid, dpr[i]));
        return blocks;
    }

    /// <summary>One block of a trunk with the given drop-path rate (MIM's aggregation head continues the trunk's ramp).</summary>
    public static Block For(VitTrunkConfig c, (int H, int W) grid, double dropPathRate) =>
        new(c.EmbedDim, c.NumHeads, c.MlpRatio, c.QkvBias, c.QkScale, c.DropRate, c.AttnDropRate,
            dropPathRate, c.InitValues, c.NormEps, c.UseRelPosBias ? grid : null, c.AttnHeadDim);

    public Attention Attn => attn;
    public Mlp Mlp => mlp;

    public override Tensor forward(Tensor x, Tensor? relPosBias)
    {
        using var scope = NewDisposeScope();
        var a = attn.forward(norm1.forward(x), relPosBias);
        if (layerScale) a = get_parameter("gamma_1")! * a;
        x = x + dropPath.forward(a);
        var m = mlp.forward(norm2.forward(x));
        if (layerScale) m = get_parameter("gamma_2")! * m;
        x = x + dropPath.forward(m);
        return x.MoveToOuterDisposeScope();
    }
}
