using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models;

/// <summary>What a forward pass of the backbone returns besides the head output.</summary>
/// <param name="Tokens">Final tokens (B, T, C) after <c>norm</c> ([CLS] first); <c>norm</c> is the identity with mean pooling.</param>
/// <param name="Features">The head input: fc_norm(mean of patch tokens) with mean pooling, else norm(x)[:, 0].</param>
/// <param name="Hidden">Raw output of each block (B, T, C), when requested.</param>
public sealed record VitOutput(Tensor Tokens, Tensor Features, IReadOnlyList<Tensor> Hidden) : IDisposable
{
    public void Dispose()
    {
        Tokens.Dispose();
        Features.Dispose();
        foreach (var h in Hidden) h.Dispose();
    }
}

/// <summary>
/// The BEiT (v2) vision transformer of unilm <c>modeling_finetune.VisionTransformer</c>: the
/// classification / fine-tuning model and the VQ-KD encoder and decoder: the shared trunk
/// (<see cref="VitTrunk"/>) followed by the final norm or mean pooling with fc_norm, and the head.
/// Every constructor flag of the reference is honoured; state-dict names are the official ones.
/// </summary>
public sealed class BeitVisionTransformer : ExplicitModule<Tensor, Tensor>
{
    private readonly VitTrunk trunk;
    private readonly LayerNorm? norm;
    private readonly LayerNorm? fcNorm;
    private readonly Linear? head;

    public BeitVisionTransformer(VitConfig config) : base(nameof(BeitVisionTransformer))
    {
        Config = config;
        trunk = new VitTrunk(this, config);
        if (config.UseMeanPooling)
        {
            fcNorm = ModuleExtensions.LayerNorm(config.EmbedDim, config.NormEps);
            register_module("fc_norm", fcNorm);
        }
        else
        {
            norm = ModuleExtensions.LayerNorm(config.EmbedDim, config.NormEps);
            register_module("norm", norm);
        }
        if (config.NumClasses > 0)
        {
            head = nn.Linear(config.EmbedDim, config.NumClasses);
            register_module("head", head);
        }
        ModelInit.InitFineTune(this, config);
    }

    public VitConfig Config { get; }
    public VitTrunk Trunk => trunk;
    public IReadOnlyList<Block> Blocks => trunk.Blocks;
    public PatchEmbed PatchEmbed => trunk.PatchEmbed;
    public Linear? Head => head;
    public int Depth => Config.Depth;

    /// <summary>Logits (or features when the model has no head).</summary>
    public override Tensor forward(Tensor images)
    {
        using var output = ForwardFeatures(images);
        return head is null ? output.Features.alias() : Head32(output.Features);
    }

    /// <summary>The head applied to features (identity when there is no head).</summary>
    public Tensor ForwardHead(Tensor features) => head is null ? features.alias() : Head32(features);

    /// <summary>The head (low precision under <see cref="Autocast"/>), its logits in float32.</summary>
    private Tensor Head32(Tensor features)
    {
        if (!Autocast.IsEnabled) return head!.forward(features);
        using var scope = NewDisposeScope();
        return Autocast.Float32(Autocast.Linear(head!, features)).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the backbone; optionally keeps every block's raw output.</summary>
    public VitOutput ForwardFeatures(Tensor images, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var pass = trunk.Forward(images, keepHidden ? trunk.AllBlocks : null);
        var tokens = norm is null ? pass.Tokens : norm.forward(pass.Tokens);
        var features = fcNorm is not null ? fcNorm.forward(tokens[.., 1..].mean(new long[] { 1 })) : tokens[.., 0];
        ModuleExtensions.MoveToOuterDisposeScope(pass.Intermediates.Append(tokens).Append(features));
        return new VitOutput(tokens, features, pass.Intermediates);
    }

    /// <summary>
    /// Per-token features as the reference's <c>return_patch_tokens</c> (fc_norm of each patch
    /// token with mean pooling, else the normed patch tokens): (B, N, C).
    /// </summary>
    public Tensor ForwardPatchTokens(Tensor images)
    {
        using var output = ForwardFeatures(images);
        return ForwardPatchTokensFrom(output);
    }

    /// <summary><see cref="ForwardPatchTokens"/> from an existing forward pass.</summary>
    public Tensor ForwardPatchTokensFrom(VitOutput output)
    {
        using var patches = output.Tokens[.., 1..];
        return fcNorm is not null ? fcNorm.forward(patches) : patches.contiguous();
    }

    /// <summary>The reference's <c>return_all_tokens</c>: fc_norm over all T tokens, or the normed tokens.</summary>
    public Tensor ForwardAllTokens(Tensor images)
    {
        using var output = ForwardFeatures(images);
        return fcNorm is not null ? fcNorm.forward(output.Tokens) : output.Tokens.alias();
    }
}
