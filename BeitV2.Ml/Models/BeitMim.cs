using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models;

/// <summary>Normed token states of both MIM branches, plus raw block outputs when requested.</summary>
/// <param name="Final">norm(x) of the last block, (B, T, C).</param>
/// <param name="Aggregated">the aggregation head's normed output, (B, T, C); its [CLS] is unused.</param>
/// <param name="Hidden">raw output of each backbone block (masked patches already replaced).</param>
/// <param name="AggregationHidden">raw output of each aggregation-head block.</param>
public sealed record MimFeatures(Tensor Final, Tensor Aggregated, IReadOnlyList<Tensor> Hidden, IReadOnlyList<Tensor> AggregationHidden) : IDisposable
{
    public void Dispose()
    {
        Final.Dispose();
        Aggregated.Dispose();
        foreach (var t in Hidden.Concat(AggregationHidden)) t.Dispose();
    }
}

/// <summary>The two cross-entropies of BEiT v2 pretraining and their argmax accuracies.</summary>
public sealed record MimLoss(Tensor Total, Tensor Final, Tensor Aggregated, double AccuracyFinal, double AccuracyAggregated) : IDisposable
{
    public void Dispose()
    {
        Total.Dispose();
        Final.Dispose();
        Aggregated.Dispose();
    }
}

/// <summary>
/// BEiT v2 masked image modeling with patch aggregation (unilm
/// <c>VisionTransformerForMaskedImageModelingCLS</c>): masked patches are replaced by a learned
/// [MASK] embedding; the model predicts each masked patch's visual token from the final layer, and
/// again through a small head fed with the final [CLS] and the patch states of layer
/// <c>early_layers</c>, which forces [CLS] to aggregate the image.
/// </summary>
public sealed class BeitMim : ExplicitModule<Tensor, Tensor?, Tensor[]>
{
    private readonly VitTrunk trunk;
    private readonly LayerNorm norm;
    private readonly Linear lmHead;
    private readonly ModuleList<Block> clsPtLayers;
    private readonly LayerNorm? clsPtNorm;
    private readonly Linear? clsPtLmHead;

    public BeitMim(MimConfig config) : base(nameof(BeitMim))
    {
        Config = config;
        var c = config;
        trunk = new VitTrunk(this, c, maskToken: true);
        norm = ModuleExtensions.LayerNorm(c.EmbedDim, c.NormEps);
        register_module("norm", norm);
        lmHead = nn.Linear(c.EmbedDim, c.VocabSize);
        register_module("lm_head", lmHead);

        // The head blocks continue the drop-path ramp of a model of max(depth, early+head) blocks.
        var grid = (trunk.GridSize, trunk.GridSize);
        var headDpr = ModuleExtensions.LinearRates(c.DropPathRate, Math.Max(c.Depth, c.EarlyLayers + c.HeadLayers));
        clsPtLayers = new ModuleList<Block>();
        for (var i = c.EarlyLayers; i < c.EarlyLayers + c.HeadLayers; i++) clsPtLayers.Add(Block.For(c, grid, headDpr[i]));
        register_module("cls_pt_layers", clsPtLayers);
        AggregationBlocks = clsPtLayers.ToList();
        if (!c.SharedLmHead)
        {
            clsPtNorm = ModuleExtensions.LayerNorm(c.EmbedDim, c.NormEps);
            clsPtLmHead = nn.Linear(c.EmbedDim, c.VocabSize);
            register_module("cls_pt_norm", clsPtNorm);
            register_module("cls_pt_lm_head", clsPtLmHead);
        }
        ModelInit.InitPretrain(this, c.InitStd, trunk.Blocks, clsPtLayers.ToList(), c.EarlyLayers);
    }

    public MimConfig Config { get; }
    public VitTrunk Trunk => trunk;
    public int NumPatches => trunk.NumPatches;
    /// <summary>The aggregation head's blocks (<c>cls_pt_layers</c>), in order.</summary>
    public IReadOnlyList<Block> AggregationBlocks { get; }

    /// <summary>Both branches' token states. A null mask means nothing is masked.</summary>
    public MimFeatures ForwardFeatures(Tensor images, Tensor? boolMaskedPos, bool keepHidden = false)
    {
        using var scope = NewDisposeScope();
        var pass = trunk.Forward(images, keepHidden ? trunk.AllBlocks : new[] { Config.EarlyLayers - 1 }, boolMaskedPos);
        var x = pass.Tokens;
        var agg = cat(new[] { x[.., ..1], pass.Block(Config.EarlyLayers - 1)[.., 1..] }, 1);
        var aggHidden = new List<Tensor>();
        foreach (var blk in clsPtLayers)
        {
            agg = blk.forward(agg, pass.SharedBias);
            if (keepHidden) aggHidden.Add(agg);
        }
        var final = norm.forward(x);
        var aggregated = (clsPtNorm ?? norm).forward(agg);
        var hidden = keepHidden ? pass.Intermediates : Array.Empty<Tensor>();
        ModuleExtensions.MoveToOuterDisposeScope(hidden.Concat(aggHidden).Append(final).Append(aggregated));
        return new MimFeatures(final, aggregated, hidden, aggHidden);
    }

    /// <summary>Logits of the masked patches from both branches: [final, aggregated], each (M, vocab), batch-major then patch order.</summary>
    public override Tensor[] forward(Tensor images, Tensor? boolMaskedPos)
    {
        using var scope = NewDisposeScope();
        var mask = boolMaskedPos ?? zeros(images.shape[0], NumPatches, dtype: @bool, device: images.device);
        using var f = ForwardFeatures(images, mask);
        var idx = TensorIndex.Tensor(mask);
        var l1 = LmHead(lmHead, f.Final[.., 1..][idx]);
        var l2 = LmHead(clsPtLmHead ?? lmHead, f.Aggregated[.., 1..][idx]);
        return new[] { l1.MoveToOuterDisposeScope(), l2.MoveToOuterDisposeScope() };
    }

    /// <summary>Logits for every patch position from both branches (reference <c>return_all_tokens</c>), each (B, N, vocab).</summary>
    public Tensor[] ForwardAllTokens(Tensor images, Tensor? boolMaskedPos)
    {
        using var scope = NewDisposeScope();
        using var f = ForwardFeatures(images, boolMaskedPos);
        var l1 = LmHead(lmHead, f.Final[.., 1..]);
        var l2 = LmHead(clsPtLmHead ?? lmHead, f.Aggregated[.., 1..]);
        return new[] { l1.MoveToOuterDisposeScope(), l2.MoveToOuterDisposeScope() };
    }

    /// <summary>A vocabulary head: low precision under <see cref="Autocast"/>, logits in float32 (the losses need them so).</summary>
    private static Tensor LmHead(Linear head, Tensor x) => Autocast.IsEnabled ? Autocast.Float32(Autocast.Linear(head, x)) : head.forward(x);

    /// <summary>Normed patch states of both branches (reference <c>return_patch_tokens</c>), each (B, N, C).</summary>
    public Tensor[] ForwardPatchTokens(Tensor images, Tensor? boolMaskedPos)
    {
        using var f = ForwardFeatures(images, boolMaskedPos);
        using var final = f.Final[.., 1..];
        using var aggregated = f.Aggregated[.., 1..];
        return new[] { final.contiguous(), aggregated.contiguous() };
    }

    /// <summary>
    /// The pretraining objective (engine_for_pretraining): cross-entropy of each branch against the
    /// tokenizer's ids of the masked patches, summed with equal weights.
    /// </summary>
    /// <param name="tokenIds">(B, N) int64 visual token ids from the tokenizer.</param>
    public MimLoss Loss(Tensor images, Tensor boolMaskedPos, Tensor tokenIds)
    {
        using var scope = NewDisposeScope();
        var labels = tokenIds[TensorIndex.Tensor(boolMaskedPos)];
        var logits = forward(images, boolMaskedPos);
        var l1 = nn.functional.cross_entropy(logits[0], labels);
        var l2 = nn.functional.cross_entropy(logits[1], labels);
        var total = l1 + l2;
        double acc1, acc2;
        using (no_grad())
        {
            acc1 = logits[0].argmax(-1).eq(labels).to_type(float32).mean().item<float>();
            acc2 = logits[1].argmax(-1).eq(labels).to_type(float32).mean().item<float>();
        }
        return new MimLoss(total.MoveToOuterDisposeScope(), l1.MoveToOuterDisposeScope(), l2.MoveToOuterDisposeScope(), acc1, acc2);
    }
}
