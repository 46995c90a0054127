using BeitV2.Ml.Precision;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// BEiT multi-head self-attention (unilm <c>modeling_finetune.Attention</c>): one bias-free qkv
/// projection with separate q and v biases (k has no bias), q scaled before the product, an
/// optional per-layer relative position bias and an optional shared bias passed in.
/// </summary>
/// <remarks>
/// Parameters are looked up by name at forward time rather than cached in fields: TorchSharp's
/// <c>Module.to(device)</c> replaces registered tensors, and a cached field would keep the old one.
/// </remarks>
public sealed class Attention : ExplicitModule<Tensor, Tensor?, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly Dropout attnDrop;
    private readonly Dropout projDrop;
    private readonly int numHeads;
    private readonly double scale;
    private readonly bool defaultScale;
    private readonly bool hasQkvBias;
    private readonly (int H, int W)? window;
    private readonly InferenceBiasCache biasCache = new();

    public Attention(int dim, int numHeads, bool qkvBias, double? qkScale, double attnDropRate, double projDropRate,
        (int H, int W)? window, int? attnHeadDim) : base(nameof(Attention))
    {
        this.numHeads = numHeads;
        this.window = window;
        hasQkvBias = qkvBias;
        var headDim = attnHeadDim ?? dim / numHeads;
        var allHeadDim = headDim * numHeads;
        scale = qkScale ?? Math.Pow(headDim, -0.5);
        defaultScale = qkScale is null;

        qkv = nn.Linear(dim, allHeadDim * 3, hasBias: false);
        register_module("qkv", qkv);
        if (qkvBias)
        {
            register_parameter("q_bias", ModuleExtensions.Param(zeros(allHeadDim)));
            register_parameter("v_bias", ModuleExtensions.Param(zeros(allHeadDim)));
        }
        if (window is { } w) RelativePositionBias.Register(this, w, numHeads);
        attnDrop = nn.Dropout(attnDropRate);
        proj = nn.Linear(allHeadDim, dim);
        projDrop = nn.Dropout(projDropRate);
        register_module("attn_drop", attnDrop);
        register_module("proj", proj);
        register_module("proj_drop", projDrop);
    }

    public bool HasOwnRelativeBias => window is not null;

    /// <summary>
    /// Use libtorch's fused scaled-dot-product attention (the relative biases as an additive mask) when no
    /// gradient is recorded, nothing is autocast and the scale is the default 1/√head_dim; otherwise, and when
    /// false, the reference's explicit q·scale → QKᵀ + bias → softmax → ·V. Both agree within the parity
    /// tolerance (the fused kernel scales the product instead of q and uses a faster exp); the switch exists to
    /// rule the kernel out when a result looks off. Process-wide, default true.
    /// </summary>
    public static bool UseFusedInference { get; set; } = true;

    public override Tensor forward(Tensor x, Tensor? sharedBias)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], n = x.shape[1];
        Tensor qkvOut;
        if (hasQkvBias)
        {
            var qBias = get_parameter("q_bias")!;
            var vBias = get_parameter("v_bias")!;
            var bias = cat(new Tensor[] { qBias, zeros_like(vBias), vBias });
            qkvOut = Autocast.Linear(x, qkv.weight!, bias);
        }
        else
        {
            qkvOut = Autocast.Linear(qkv, x);
        }
        var parts = qkvOut.reshape(b, n, 3, numHeads, -1).permute(2, 0, 3, 1, 4);
        if (UseFusedInference && defaultScale && !is_grad_enabled() && !Autocast.IsEnabled && (!training || attnDrop.p == 0))
            return Fused(parts[0], parts[1], parts[2], sharedBias, b, n).MoveToOuterDisposeScope();
        var q = parts[0] * scale;
        var k = parts[1];
        var v = parts[2];
        var attn = Autocast.Float32(Autocast.MatMul(q, k.transpose(-2, -1)));
        if (window is { } w)
            attn = attn + RelativePositionBias.Lookup(this, w).unsqueeze(0);
        if (sharedBias is not null)
            attn = attn + sharedBias;
        attn = attn.softmax(-1);
        attn = attnDrop.forward(attn);
        var o = Autocast.MatMul(attn, v).transpose(1, 2).reshape(b, n, -1);
        o = projDrop.forward(Autocast.Linear(proj, o));
        return o.MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) biasCache.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>The inference path: one fused kernel with the summed relative biases as a (1, H, T, T) additive mask.</summary>
    private Tensor Fused(Tensor q, Tensor k, Tensor v, Tensor? sharedBias, long b, long n)
    {
        Tensor? mask = null;
        if (window is { } w) mask = biasCache.Get(this, w, numHeads);
        if (sharedBias is not null) mask = mask is null ? sharedBias : mask + sharedBias;
        if (mask is not null) mask = mask.reshape(1, numHeads, n, n).to(q.dtype);
        var o = nn.functional.scaled_dot_product_attention(q, k, v, mask).transpose(1, 2).reshape(b, n, -1);
        return projDrop.forward(Autocast.Linear(proj, o));
    }
}
