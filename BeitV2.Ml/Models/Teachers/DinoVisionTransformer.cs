using BeitV2.Ml.Precision;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// DINO's plain pre-norm ViT (vqkd_teacher/dino.py): full qkv bias, absolute position embedding,
/// no layer scale, scores scaled after the product, final norm over all tokens. As the VQ-KD
/// teacher its target is norm(x)[:, 1:] (768-d for ViT-B/16).
/// </summary>
public sealed class DinoVisionTransformer : ExplicitModule<Tensor, Tensor>, IVqkdTeacher
{
    private readonly PatchEmbed patchEmbed;
    private readonly Dropout posDrop;
    private readonly ModuleList<DinoBlock> blocks = new();
    private readonly LayerNorm norm;
    private readonly Linear? head;
    private readonly ScalingLayer scaling = ScalingLayer.ForImageNet();

    public DinoConfig Config { get; }

    public DinoVisionTransformer(DinoConfig c) : base(nameof(DinoVisionTransformer))
    {
        Config = c;
        patchEmbed = new PatchEmbed(c.ImgSize, c.PatchSize, c.InChans, c.EmbedDim);
        register_parameter("cls_token", ModuleExtensions.Param(zeros(1, 1, c.EmbedDim)));
        register_parameter("pos_embed", ModuleExtensions.Param(zeros(1, patchEmbed.NumPatches + 1, c.EmbedDim)));
        register_module("patch_embed", patchEmbed);
        posDrop = nn.Dropout(c.DropRate);
        register_module("pos_drop", posDrop);
        var dpr = ModuleExtensions.LinearRates(c.DropPathRate, c.Depth);
        for (var i = 0; i < c.Depth; i++)
            blocks.Add(new DinoBlock(c.EmbedDim, c.NumHeads, c.MlpRatio, c.QkvBias, c.QkScale, c.DropRate, c.AttnDropRate, dpr[i], c.NormEps));
        register_module("blocks", blocks);
        norm = ModuleExtensions.LayerNorm(c.EmbedDim, c.NormEps);
        register_module("norm", norm);
        if (c.NumClasses > 0)
        {
            head = nn.Linear(c.EmbedDim, c.NumClasses);
            register_module("head", head);
        }
    }

    public string Kind => "dino";
    public int OutputDim => Config.EmbedDim;
    public nn.Module Module => this;

    /// <summary>The normed [CLS] token (the reference forward; head applied when it has one).</summary>
    public override Tensor forward(Tensor images)
    {
        var (tokens, _) = ForwardTokens(images);
        using var t = tokens;
        using var cls = t[.., 0];
        if (head is null) return cls.clone();
        if (!Autocast.IsEnabled) return head.forward(cls);
        using var scope = NewDisposeScope();
        return Autocast.Float32(Autocast.Linear(head, cls)).MoveToOuterDisposeScope();
    }

    /// <summary>norm(x) over all tokens, and optionally every block's output.</summary>
    public (Tensor Tokens, IReadOnlyList<Tensor> Hidden) ForwardTokens(Tensor images, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var x = patchEmbed.forward(images);
        x = cat(new[] { get_parameter("cls_token")!.expand(x.shape[0], -1, -1), x }, 1);
        Tensor pos = get_parameter("pos_embed")!;
        // DINO interpolates when the patch count differs or the input is not square.
        if (x.shape[1] != pos.shape[1] || images.shape[2] != images.shape[3])
            pos = PositionEmbedding.Interpolate(pos, (int)images.shape[2] / Config.PatchSize, (int)images.shape[3] / Config.PatchSize);
        x = posDrop.forward(x + pos);
        var hidden = new List<Tensor>();
        foreach (var blk in blocks)
        {
            x = blk.forward(x);
            if (keepHidden) hidden.Add(x);
        }
        var tokens = norm.forward(x);
        foreach (var t in hidden.Append(tokens)) t.MoveToOuterDisposeScope();
        return (tokens, hidden);
    }

    public Tensor Scale(Tensor imagesPre) => scaling.forward(imagesPre);

    public Tensor GetRegressTarget(Tensor imagesPre)
    {
        using var _ = no_grad();
        using var scaled = Scale(imagesPre);
        var (tokens, _) = ForwardTokens(scaled);
        using var t = tokens;
        using var patches = t[.., 1..];
        return patches.contiguous();
    }

    /// <summary>
    /// Loads the official <c>dino_vitbase16_pretrain.pth</c> (a bare state dict), a
    /// <c>{'model': ...}</c> file, a VQ-KD checkpoint's <c>teacher_model.*</c> or safetensors, strictly
    /// (the reference loads non-strictly and would silently keep random weights).
    /// </summary>
    public static DinoVisionTransformer Load(string path, DinoConfig? config = null)
    {
        var sd = TeacherKeys.Visual(StateDictFile.Read(path), "");
        var model = new DinoVisionTransformer(config ?? DinoConfig.FromStateDict(sd));
        StateDictLoader.Load(model, sd, "DINO ViT");
        return model;
    }
}

/// <summary>DINO block: x += DropPath(attn(norm1(x))); x += DropPath(mlp(norm2(x))).</summary>
public sealed class DinoBlock : ExplicitModule<Tensor, Tensor>
{
    private readonly LayerNorm norm1;
    private readonly DinoAttention attn;
    private readonly DropPath dropPath;
    private readonly LayerNorm norm2;
    private readonly Mlp mlp;

    public DinoBlock(int dim, int heads, double mlpRatio, bool qkvBias, double? qkScale, double drop, double attnDrop, double dropPathRate, double eps)
        : base(nameof(DinoBlock))
    {
        norm1 = ModuleExtensions.LayerNorm(dim, eps);
        attn = new DinoAttention(dim, heads, qkvBias, qkScale, attnDrop, drop);
        dropPath = new DropPath(dropPathRate);
        norm2 = ModuleExtensions.LayerNorm(dim, eps);
        mlp = new Mlp(dim, (long)(dim * mlpRatio), drop);
        register_module("norm1", norm1);
        register_module("attn", attn);
        register_module("drop_path", dropPath);
        register_module("norm2", norm2);
        register_module("mlp", mlp);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + dropPath.forward(attn.forward(norm1.forward(x)));
        x = x + dropPath.forward(mlp.forward(norm2.forward(x)));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>DINO attention: softmax((q·kᵀ)·d^−0.5)·v, with a full qkv bias.</summary>
public sealed class DinoAttention : ExplicitModule<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly Dropout attnDrop;
    private readonly Dropout projDrop;
    private readonly int heads;
    private readonly double scale;

    public DinoAttention(int dim, int heads, bool qkvBias, double? qkScale, double attnDropRate, double projDropRate) : base(nameof(DinoAttention))
    {
        this.heads = heads;
        scale = qkScale ?? Math.Pow(dim / heads, -0.5);
        qkv = nn.Linear(dim, dim * 3, hasBias: qkvBias);
        attnDrop = nn.Dropout(attnDropRate);
        proj = nn.Linear(dim, dim);
        projDrop = nn.Dropout(projDropRate);
        register_module("qkv", qkv);
        register_module("attn_drop", attnDrop);
        register_module("proj", proj);
        register_module("proj_drop", projDrop);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], n = x.shape[1], c = x.shape[2];
        var parts = Autocast.Linear(qkv, x).reshape(b, n, 3, heads, c / heads).permute(2, 0, 3, 1, 4);
        var attn = (Autocast.Float32(Autocast.MatMul(parts[0], parts[1].transpose(-2, -1))) * scale).softmax(-1);
        attn = attnDrop.forward(attn);
        var o = Autocast.MatMul(attn, parts[2]).transpose(1, 2).reshape(b, n, c);
        return projDrop.forward(Autocast.Linear(proj, o)).MoveToOuterDisposeScope();
    }
}
