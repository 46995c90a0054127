using BeitV2.Ml.Models;
using Onnx;
using static BeitV2.Ml.Onnx.OnnxGraph;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// <see cref="BeitMim"/> (BEiT v2 pretraining, unilm <c>VisionTransformerForMaskedImageModelingCLS</c>) as an ONNX
/// graph. Served, it is a backbone: <see cref="OnnxNames.Cls"/> and <see cref="OnnxNames.Mean"/> of the final-normed
/// tokens, as <c>ServedMim.Features</c> computes them (nothing masked, so the [MASK] substitution is left out: with an
/// all-false mask it is x·1 + m·0 = x exactly). With diagnostics it also writes the pretraining outputs under the
/// <c>mim</c> fixture's names: <c>hidden_i</c>, <c>patch_tokens_final</c> and <c>logits_all_final</c> (lm_head over
/// every normed patch token, <see cref="BeitMim.ForwardAllTokens"/>), and the aggregation branch <c>agg_hidden_i</c>,
/// <c>patch_tokens_agg</c>, <c>logits_all_agg</c>; with <see cref="OnnxExportOptions.MaskInput"/> it takes
/// <see cref="OnnxNames.BoolMaskedPos"/> (B, N) bool. The masked-only logits (<c>logits_final</c>: rows of
/// <c>logits_all_final</c> where the mask is set, a data-dependent count) and the losses are not written.
/// </summary>
public static class MimOnnxExporter
{
    public static ModelProto Export(BeitMim model, OnnxExportOptions options)
    {
        var c = model.Config;
        var sd = OnnxLayers.Weights(model);
        var g = options.NewGraph("beitv2_mim");
        long C = c.EmbedDim, N = model.NumPatches, T = N + 1, V = c.VocabSize;
        g.Input(OnnxNames.Images, new long?[] { null, c.InChans, c.ImgSize, c.ImgSize });
        string? mask = null;
        if (options.MaskInput)
        {
            mask = OnnxNames.BoolMaskedPos;
            g.Input(mask, new long?[] { null, N }, TensorProto.Types.DataType.Bool);
        }
        var trunk = VitTrunkOnnx.Write(g, model, model.Trunk, "", OnnxNames.Images, mask);

        // ServedMim: norm(x), then its [CLS] and the mean of its patch tokens.
        var final = g.LayerNorm(sd, "norm", trunk.Tokens, c.NormEps);
        var finalPatches = g.PatchTokens(final);
        g.OutputAs(g.TokenAt(final, 0), OnnxNames.Cls, new long?[] { null, C });
        g.OutputAs(g.MeanOverTokens(finalPatches), OnnxNames.Mean, new long?[] { null, C });
        if (!options.Diagnostics) return g.ToModel(Doc(c));

        for (var i = 0; i < trunk.Hidden.Count; i++) g.OutputAs(trunk.Hidden[i], OnnxNames.Hidden(i), new long?[] { null, T, C });
        g.OutputAs(finalPatches, "patch_tokens_final", new long?[] { null, N, C });
        g.OutputAs(g.Linear(sd, "lm_head", finalPatches), "logits_all_final", new long?[] { null, N, V });

        // The aggregation head (BeitMim.ForwardFeatures): the final [CLS] with the patch states of block
        // early_layers − 1, through cls_pt_layers with the backbone's shared relative bias, then its own norm and
        // lm_head, or the backbone's when shared_lm_head.
        var clsToken = g.Node("Slice", new[] { trunk.Tokens, g.Int64s("slice_0", 0), g.Int64s("slice_1", 1), g.Int64s("slice_axis_1", 1) });
        var agg = g.Node("Concat", new[] { clsToken, g.PatchTokens(trunk.Hidden[c.EarlyLayers - 1]) }, attrs: Int("axis", 1));
        using var sharedBias = VitTrunkOnnx.SharedBias(model.Trunk);
        for (var i = 0; i < model.AggregationBlocks.Count; i++)
        {
            agg = VitTrunkOnnx.WriteBlock(g, sd, $"cls_pt_layers.{i}", model.AggregationBlocks[i], c, agg, trunk.SharedBias, sharedBias);
            g.OutputAs(agg, $"agg_hidden_{i}", new long?[] { null, T, C });
        }
        var aggPatches = g.PatchTokens(g.LayerNorm(sd, c.SharedLmHead ? "norm" : "cls_pt_norm", agg, c.NormEps));
        g.OutputAs(aggPatches, "patch_tokens_agg", new long?[] { null, N, C });
        g.OutputAs(g.Linear(sd, c.SharedLmHead ? "lm_head" : "cls_pt_lm_head", aggPatches), "logits_all_agg", new long?[] { null, N, V });
        return g.ToModel(Doc(c));
    }

    private static string Doc(MimConfig c) => $"BEiT v2 MIM ({c.ImgSize}px, {c.Depth} blocks, {c.EmbedDim} wide, vocabulary {c.VocabSize})";
}
