using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>Outputs of the CLIP image tower.</summary>
/// <param name="Tokens">ln_post over all tokens, (B, T, W).</param>
/// <param name="LnPre">tokens after ln_pre, (B, T, W).</param>
/// <param name="Hidden">each residual block's output, batch first.</param>
public sealed record ClipOutput(Tensor Tokens, Tensor LnPre, IReadOnlyList<Tensor> Hidden) : IDisposable
{
    public void Dispose()
    {
        Tokens.Dispose();
        LnPre.Dispose();
        foreach (var h in Hidden) h.Dispose();
    }
}

/// <summary>
/// The CLIP image tower (OpenAI <c>model.py</c> VisionTransformer as vendored in unilm
/// vqkd_teacher): bias-free patch conv, 1-D class embedding, ln_pre, residual blocks with
/// nn.MultiheadAttention and QuickGELU, ln_post, and a plain projection matrix.
/// </summary>
public sealed class ClipVisionTransformer : ExplicitModule<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly LayerNorm lnPre;
    private readonly ClipTransformer transformer;
    private readonly LayerNorm lnPost;

    public ClipVisionConfig Config { get; }

    public ClipVisionTransformer(ClipVisionConfig c) : base(nameof(ClipVisionTransformer))
    {
        Config = c;
        var grid = c.InputResolution / c.PatchSize;
        var scale = Math.Pow(c.Width, -0.5);
        conv1 = nn.Conv2d(3, c.Width, kernel_size: c.PatchSize, stride: c.PatchSize, bias: false);
        register_parameter("class_embedding", ModuleExtensions.Param(randn(c.Width) * scale));
        register_parameter("positional_embedding", ModuleExtensions.Param(randn(grid * grid + 1, c.Width) * scale));
        register_parameter("proj", ModuleExtensions.Param(randn(c.Width, c.OutputDim) * scale));
        register_module("conv1", conv1);
        lnPre = ModuleExtensions.LayerNorm(c.Width, c.NormEps);
        register_module("ln_pre", lnPre);
        transformer = new ClipTransformer(c.Width, c.Layers, c.Heads, c.NormEps);
        register_module("transformer", transformer);
        lnPost = ModuleExtensions.LayerNorm(c.Width, c.NormEps);
        register_module("ln_post", lnPost);
    }

    /// <summary>encode_image: ln_post([CLS]) @ proj, (B, output_dim).</summary>
    public override Tensor forward(Tensor images)
    {
        using var o = ForwardTokens(images);
        using var cls = o.Tokens[.., 0];
        return Projected(cls);
    }

    /// <summary>ln_post(tokens)[:, 1:] @ proj: the VQ-KD regression target, (B, N, output_dim).</summary>
    public Tensor RegressTarget(Tensor images)
    {
        using var o = ForwardTokens(images);
        using var patches = o.Tokens[.., 1..];
        return Projected(patches);
    }

    /// <summary>x @ proj (low precision under <see cref="Autocast"/>), in float32.</summary>
    private Tensor Projected(Tensor x)
    {
        if (!Autocast.IsEnabled) return x.matmul(get_parameter("proj")!);
        using var scope = NewDisposeScope();
        return Autocast.Float32(Autocast.MatMul(x, get_parameter("proj")!)).MoveToOuterDisposeScope();
    }

    public ClipOutput ForwardTokens(Tensor images, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var x = Autocast.Float32(Autocast.Conv(conv1, images));
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1);
        var cls = get_parameter("class_embedding")! + zeros(x.shape[0], 1, x.shape[2], dtype: x.dtype, device: x.device);
        x = cat(new[] { cls, x }, 1);
        Tensor pos = get_parameter("positional_embedding")!;
        if (x.shape[1] != pos.shape[0])
            pos = PositionEmbedding.Interpolate(pos.unsqueeze(0), (int)images.shape[2] / Config.PatchSize, (int)images.shape[3] / Config.PatchSize)[0];
        x = x + pos;
        var lnPreOut = lnPre.forward(x);
        var hidden = new List<Tensor>();
        x = lnPreOut;
        foreach (var blk in transformer.Blocks)
        {
            x = blk.forward(x);
            if (keepHidden) hidden.Add(x);
        }
        var tokens = lnPost.forward(x);
        foreach (var t in hidden.Append(tokens).Append(lnPreOut)) t.MoveToOuterDisposeScope();
        return new ClipOutput(tokens, lnPreOut, hidden);
    }
}

/// <summary>The stack of residual blocks (<c>transformer.resblocks</c>).</summary>
public sealed class ClipTransformer : ExplicitModule
{
    private readonly ModuleList<ClipResidualBlock> resblocks = new();

    public ClipTransformer(int width, int layers, int heads, double eps) : base(nameof(ClipTransformer))
    {
        for (var i = 0; i < layers; i++) resblocks.Add(new ClipResidualBlock(width, heads, eps));
        register_module("resblocks", resblocks);
    }

    public IEnumerable<ClipResidualBlock> Blocks => resblocks;
}

/// <summary>x += attn(ln_1(x)); x += mlp(ln_2(x)) with QuickGELU in the MLP.</summary>
public sealed class ClipResidualBlock : ExplicitModule<Tensor, Tensor>
{
    private readonly ClipAttention attn;
    private readonly LayerNorm ln1;
    private readonly ClipMlp mlp;
    private readonly LayerNorm ln2;

    public ClipResidualBlock(int width, int heads, double eps) : base(nameof(ClipResidualBlock))
    {
        attn = new ClipAttention(width, heads);
        ln1 = ModuleExtensions.LayerNorm(width, eps);
        mlp = new ClipMlp(width);
        ln2 = ModuleExtensions.LayerNorm(width, eps);
        register_module("attn", attn);
        register_module("ln_1", ln1);
        register_module("mlp", mlp);
        register_module("ln_2", ln2);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + attn.forward(ln1.forward(x));
        x = x + mlp.forward(ln2.forward(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// nn.MultiheadAttention as CLIP uses it (self-attention, no mask): packed in_proj_weight/bias
/// (q, k, v rows; all three biased), heads as consecutive slices, q/√d before the product, out_proj.
/// Computed batch-first; the reference runs sequence-first, which only changes memory layout.
/// </summary>
public sealed class ClipAttention : ExplicitModule<Tensor, Tensor>
{
    private readonly Linear outProj;
    private readonly int heads;

    public ClipAttention(int width, int heads) : base(nameof(ClipAttention))
    {
        this.heads = heads;
        var w = empty(3 * width, width);
        nn.init.xavier_uniform_(w);
        register_parameter("in_proj_weight", ModuleExtensions.Param(w));
        register_parameter("in_proj_bias", ModuleExtensions.Param(zeros(3 * width)));
        outProj = nn.Linear(width, width);
        register_module("out_proj", outProj);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        var headDim = c / heads;
        var qkv = Autocast.Linear(x, get_parameter("in_proj_weight")!, get_parameter("in_proj_bias")!)
            .reshape(b, t, 3, heads, headDim).permute(2, 0, 3, 1, 4);
        var q = qkv[0] / Math.Sqrt(headDim);
        var attn = Autocast.Float32(Autocast.MatMul(q, qkv[1].transpose(-2, -1))).softmax(-1);
        var o = Autocast.MatMul(attn, qkv[2]).transpose(1, 2).reshape(b, t, c);
        return Autocast.Linear(outProj, o).MoveToOuterDisposeScope();
    }
}

/// <summary>c_fc → QuickGELU (x·σ(1.702x)) → c_proj.</summary>
public sealed class ClipMlp : ExplicitModule<Tensor, Tensor>
{
    private readonly Linear cFc;
    private readonly Linear cProj;

    public ClipMlp(int width) : base(nameof(ClipMlp))
    {
        cFc = nn.Linear(width, width * 4);
        cProj = nn.Linear(width * 4, width);
        register_module("c_fc", cFc);
        register_module("c_proj", cProj);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = Autocast.Linear(cFc, x);
        h = h * (h * 1.702).sigmoid();
        return Autocast.Linear(cProj, h).MoveToOuterDisposeScope();
    }
}
