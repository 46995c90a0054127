using BeitV2.Ml.Models.Vqkd;
using Onnx;
using static BeitV2.Ml.Onnx.OnnxGraph;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// The VQ-KD tokenizer's encoding path (<see cref="VqkdTokenizer.TokenIds"/>) as an ONNX graph: <see cref="OnnxNames.Images"/>
/// already mapped by the tokenizer's process_type (what <see cref="VqkdTokenizer.PreProcess"/> returns; served:
/// <see cref="VqkdPreProcess.Normalization"/>), the encoder trunk and its patch-token norm, <c>encode_task_layer</c>,
/// l2-normalisation and the nearest code, output <see cref="OnnxNames.TokenIds"/> (B, N) int64 in row-major patch
/// order. With diagnostics also the <c>vqkd</c> fixture's <c>encoder_hidden_i</c>, <c>encoder_out</c>,
/// <c>encode_task_out</c> and <c>quantized</c> (the fixture's <c>quant_indices</c> are the token ids flattened). The decoder is not needed to tokenize and is
/// not written.
/// </summary>
public static class VqkdOnnxExporter
{
    /// <summary>F.normalize's eps (norm_ema_quantizer.py l2norm: <c>F.normalize(t, p=2, dim=-1)</c>).</summary>
    private const float NormalizeEps = 1e-12f;

    /// <exception cref="InvalidOperationException">the codebook was never initialised (as the served tokenizer refuses it).</exception>
    public static ModelProto Export(VqkdTokenizer model, OnnxExportOptions options)
    {
        if (!model.Quantizer.Embedding.Initialised)
            throw new InvalidOperationException("The codebook was never initialised (initted = 0): train the tokenizer first or load trained weights.");
        var c = model.Config;
        var e = c.Encoder;
        var sd = OnnxLayers.Weights(model);
        var g = options.NewGraph("vqkd_tokenizer");
        long C = e.EmbedDim, grid = e.GridSize, N = grid * grid, T = N + 1, D = c.EmbedDim;
        g.Input(OnnxNames.Images, new long?[] { null, e.InChans, e.ImgSize, e.ImgSize });
        var trunk = VitTrunkOnnx.Write(g, model, model.Encoder.Trunk, "encoder.", OnnxNames.Images);

        // encoder(x, return_patch_tokens=True): fc_norm of each patch token with mean pooling, else the normed patch
        // tokens (BeitVisionTransformer.ForwardPatchTokensFrom; a LayerNorm is per token, so slicing first is the same).
        var patches = g.PatchTokens(trunk.Tokens);
        var encoderOut = g.LayerNorm(sd, e.UseMeanPooling ? "encoder.fc_norm" : "encoder.norm", patches, e.NormEps);
        var taskOut = g.Linear(sd, "encode_task_layer.2", g.Node("Tanh", new[] { g.Linear(sd, "encode_task_layer.0", encoderOut) }));

        // norm_ema_quantizer.py: z = l2norm(z) = z / max(‖z‖₂, eps) over the code axis; (B, N, D) is the reference's
        // (B, h, w, D) flattened in the same row-major order.
        var norm = g.Node("ReduceL2", new[] { taskOut }, attrs: new[] { Ints("axes", -1), Int("keepdims", 1) });
        var z = g.Node("Div", new[] { taskOut, g.Node("Max", new[] { norm, g.Scalar("normalize_eps", NormalizeEps) }) });

        // d = z.pow(2).sum(1, keepdim) + e.pow(2).sum(1) − 2·z·eᵀ and argmin (first index on ties), in the reference's
        // order: (z² + e²) − (2·(z·eᵀ)). The codes' squared norms depend only on the weights, so they are computed once
        // here by the same torch expression the reference evaluates (NormEmaVectorQuantizer.Nearest) and stored. The
        // z·eᵀ MatMul must stay float32 under any int8 rewrite of the graph: quantising it would move ids near ties.
        var codebook = model.Quantizer.Embedding.Weight;
        string codeSq;
        using (var sq = codebook.detach().pow(2).sum(1)) codeSq = g.Initializer("quantize.embedding.weight_sq_sum", sq);
        var zSq = g.Node("ReduceSumSquare", new[] { z }, attrs: new[] { Ints("axes", -1), Int("keepdims", 1) });
        var dot = g.Linear(sd, "quantize.embedding", z, bias: false);
        var d = g.Node("Sub", new[] { g.Node("Add", new[] { zSq, codeSq }), g.Node("Mul", new[] { dot, g.Scalar("two", 2f) }) });
        var ids = g.Node("ArgMin", new[] { d }, attrs: new[] { Int("axis", -1), Int("keepdims", 0), Int("select_last_index", 0) });
        g.OutputAs(ids, OnnxNames.TokenIds, new long?[] { null, N }, TensorProto.Types.DataType.Int64);

        if (options.Diagnostics)
        {
            for (var i = 0; i < trunk.Hidden.Count; i++) g.OutputAs(trunk.Hidden[i], $"encoder_hidden_{i}", new long?[] { null, T, C });
            g.OutputAs(encoderOut, "encoder_out", new long?[] { null, N, C });
            g.OutputAs(taskOut, "encode_task_out", new long?[] { null, N, D });
            // z_q = codebook[ids], straight-through value z + (z_q − z), as (B, D, h, w).
            var zq = g.Node("Gather", new[] { g.Constant("quantize.embedding.weight", codebook), ids }, attrs: Int("axis", 0));
            var st = g.Node("Add", new[] { z, g.Node("Sub", new[] { zq, z }) });
            var map = g.Node("Transpose", new[] { g.Node("Reshape", new[] { st, g.Int64s($"shape_b_{grid}_{grid}_{D}", 0, grid, grid, D) }) },
                attrs: Ints("perm", 0, 3, 1, 2));
            g.OutputAs(map, "quantized", new long?[] { null, D, grid, grid });
        }
        return g.ToModel($"BEiT v2 VQ-KD tokenizer ({e.ImgSize}px, {e.Depth}-block encoder, {c.NEmbed} codes of {D})");
    }
}
