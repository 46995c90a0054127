using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using Onnx;
using static BeitV2.OnnxProbe.OnnxGraph;
using static TorchSharp.torch;

namespace BeitV2.OnnxProbe;

/// <summary>How the attention core is written.</summary>
public enum AttentionMode
{
    /// <summary>opset-17 standard ops only: MatMul, Reshape, Transpose, Gather, Mul, Add(bias), Softmax.</summary>
    Standard,
    /// <summary>com.microsoft Attention (input projection fused, attention_bias = the relative bias).</summary>
    MsAttention,
    /// <summary>com.microsoft MultiHeadAttention on split q, k, v with the qkv bias and attention_bias.</summary>
    MsMha,
}

/// <summary>
/// Writes a <see cref="BeitVisionTransformer"/> (classifier) as an ONNX graph from its config and weights:
/// input <c>images</c> (batch dynamic), outputs <c>logits</c>, <c>features</c> and optionally <c>hidden_i</c>.
/// Relative position biases are gathered once here and stored as one constant (1, H, T, T) per block.
/// </summary>
public static class VitOnnxExporter
{
    /// <summary>A variant name: Mode[+fold][+sln] (fold = scale into q weights, layer scale into proj/fc2; sln = com.microsoft SkipLayerNormalization).</summary>
    public static ModelProto Export(BeitVisionTransformer model, string variant, bool hiddenOutputs = false)
    {
        var parts = variant.Split('+');
        return Export(model, Enum.Parse<AttentionMode>(parts[0]), hiddenOutputs, parts.Contains("fold"), parts.Contains("sln"));
    }

    public static ModelProto Export(BeitVisionTransformer model, AttentionMode mode = AttentionMode.Standard, bool hiddenOutputs = false,
        bool fold = false, bool skipLn = false)
    {
        var c = model.Config;
        var sd = model.state_dict();
        float[] W(string k) => Floats(sd[k]);
        float[] WT(string k) { using var t = sd[k].detach().t(); return Floats(t); }   // Linear weight (out, in) -> (in, out)

        long C = c.EmbedDim, H = c.NumHeads, D = c.AttnHeadDim ?? c.EmbedDim / c.NumHeads, A = D * H, p = c.PatchSize, g = c.ImgSize / c.PatchSize;
        long T = g * g + 1, hidden = (long)(c.EmbedDim * c.MlpRatio);
        var scale = (float)(c.QkScale ?? Math.Pow(D, -0.5));
        var gr = new OnnxGraph();
        gr.Input("images", new long?[] { null, c.InChans, c.ImgSize, c.ImgSize });

        // Patch embedding: Conv, (N, C, g, g) -> (N, C, L) -> (N, L, C).
        var pe = gr.Node("Conv", new[] { "images", gr.Initializer("patch_embed.proj.weight", W("patch_embed.proj.weight"), C, c.InChans, p, p),
            gr.Initializer("patch_embed.proj.bias", W("patch_embed.proj.bias"), C) }, attrs: new[] { Ints("kernel_shape", p, p), Ints("strides", p, p) });
        var flat = gr.Node("Reshape", new[] { pe, gr.Int64s("shape_nc_l", 0, C, -1) });
        var tokens = gr.Node("Transpose", new[] { flat }, attrs: Ints("perm", 0, 2, 1));

        // [CLS]: expand (1, 1, C) to (N, 1, C) with N from the input's shape, then concat.
        var shape = gr.Node("Shape", new[] { "images" });
        var n = gr.Node("Slice", new[] { shape, gr.Int64s("zero1", 0), gr.Int64s("one1", 1) });
        var clsShape = gr.Node("Concat", new[] { n, gr.Int64s("one_c", 1, C) }, attrs: Int("axis", 0));
        var cls = gr.Node("Expand", new[] { gr.Initializer("cls_token", W("cls_token"), 1, 1, C), clsShape });
        var x = gr.Node("Concat", new[] { cls, tokens }, attrs: Int("axis", 1));
        if (c.UseAbsPosEmb) x = gr.Node("Add", new[] { x, gr.Initializer("pos_embed", W("pos_embed"), 1, T, C) });

        using var index = RelativePositionIndex.BuildTensor((int)g, (int)g);
        Tensor? shared = c.UseSharedRelPosBias ? Gathered(sd["rel_pos_bias.relative_position_bias_table"], index, T) : null;

        gr.Int64Scalar("i0", 0); gr.Int64Scalar("i1", 1); gr.Int64Scalar("i2", 2);
        gr.Int64s("shape_qkv", 0, 0, 3, H, D); gr.Int64s("shape_nta", 0, 0, A); if (mode == AttentionMode.MsMha || fold) gr.Int64s("split_a", A, A, A);
        gr.Int64s("shape_nthd", 0, 0, H, D);
        string? pendingNorm1 = null;
        gr.Scalar("scale", scale); gr.Scalar("sqrt2", MathF.Sqrt(2f)); gr.Scalar("one", 1f); gr.Scalar("half", 0.5f);
        var eps = (float)c.NormEps;

        for (var i = 0; i < c.Depth; i++)
        {
            var b = $"blocks.{i}";
            string LN(string input, string prefix) => gr.Node("LayerNormalization", new[] { input,
                gr.Initializer($"{prefix}.weight", W($"{prefix}.weight"), C), gr.Initializer($"{prefix}.bias", W($"{prefix}.bias"), C) },
                attrs: new[] { Int("axis", -1), Float("epsilon", eps) });
            // With SkipLayerNormalization the bias of proj/fc2 goes into its bias input (deferred): one Add less each.
            string? deferredBias = null;
            string Linear(string input, string prefix, long inDim, long outDim, float[]? colScale = null, bool deferBias = false)
            {
                var wt = WT($"{prefix}.weight");
                var bias = W($"{prefix}.bias");
                if (colScale is not null)
                {
                    for (var r = 0; r < inDim; r++) for (var col = 0; col < outDim; col++) wt[r * outDim + col] *= colScale[col];
                    for (var col = 0; col < outDim; col++) bias[col] *= colScale[col];
                }
                var y = gr.Node("MatMul", new[] { input, gr.Initializer($"{prefix}.weight_t", wt, inDim, outDim) });
                var biasName = gr.Initializer($"{prefix}.bias", bias, outDim);
                if (deferBias) { deferredBias = biasName; return y; }
                return gr.Node("Add", new[] { y, biasName });
            }
            float[]? gamma1 = c.InitValues > 0 ? W($"{b}.gamma_1") : null, gamma2 = c.InitValues > 0 ? W($"{b}.gamma_2") : null;

            // Relative position bias of this block (+ the shared one), one constant (1, H, T, T).
            Tensor? rel = c.UseRelPosBias ? Gathered(sd[$"{b}.attn.relative_position_bias_table"], index, T) : null;
            if (shared is not null) rel = rel is null ? shared.alias() : rel + shared;
            var biasName = rel is null ? null : gr.Initializer($"{b}.attn.rel_bias", Floats(rel), 1, H, T, T);
            rel?.Dispose();

            float[]? qkvBias = c.QkvBias ? W($"{b}.attn.q_bias").Concat(new float[A]).Concat(W($"{b}.attn.v_bias")).ToArray() : null;
            var qkvW = WT($"{b}.attn.qkv.weight");   // (C, 3A): columns q | k | v
            if (fold && mode == AttentionMode.Standard)
            {
                for (var r = 0; r < C; r++) for (var col = 0; col < A; col++) qkvW[r * 3 * A + col] *= scale;
                if (qkvBias is not null) for (var col = 0; col < A; col++) qkvBias[col] *= scale;
            }
            // With SkipLayerNormalization the residual sum and norm1 came out of the previous block's last node.
            var h1 = pendingNorm1 ?? LN(x, $"{b}.norm1");
            pendingNorm1 = null;
            string attnOut;
            if (mode == AttentionMode.MsAttention)
            {
                var inputs = new[] { h1, gr.Initializer($"{b}.attn.qkv.weight_t", qkvW, C, 3 * A),
                    gr.Initializer($"{b}.attn.qkv_bias", qkvBias ?? new float[3 * A], 3 * A), "", "", biasName ?? "" };
                attnOut = gr.Node("Attention", inputs, domain: "com.microsoft", attrs: new[] { Int("num_heads", H), Float("scale", scale) });
            }
            else if (mode == AttentionMode.MsMha)
            {
                var qkv = gr.Node("MatMul", new[] { h1, gr.Initializer($"{b}.attn.qkv.weight_t", qkvW, C, 3 * A) });
                var qkvParts = gr.NodeMulti("Split", new[] { qkv, "split_a" }, 3, attrs: Int("axis", 2));
                var inputs = new[] { qkvParts[0], qkvParts[1], qkvParts[2], gr.Initializer($"{b}.attn.qkv_bias", qkvBias ?? new float[3 * A], 3 * A), "", biasName ?? "" };
                attnOut = gr.Node("MultiHeadAttention", inputs, domain: "com.microsoft", attrs: new[] { Int("num_heads", H), Float("scale", scale) });
            }
            else if (fold)
            {
                var qkv = gr.Node("MatMul", new[] { h1, gr.Initializer($"{b}.attn.qkv.weight_t", qkvW, C, 3 * A) });
                if (qkvBias is not null) qkv = gr.Node("Add", new[] { qkv, gr.Initializer($"{b}.attn.qkv_bias", qkvBias, 3 * A) });
                var qkvParts = gr.NodeMulti("Split", new[] { qkv, "split_a" }, 3, attrs: Int("axis", 2));
                string Heads(string t, params long[] perm) => gr.Node("Transpose", new[] { gr.Node("Reshape", new[] { t, "shape_nthd" }) }, attrs: Ints("perm", perm));
                var s = gr.Node("MatMul", new[] { Heads(qkvParts[0], 0, 2, 1, 3), Heads(qkvParts[1], 0, 2, 3, 1) });
                if (biasName is not null) s = gr.Node("Add", new[] { s, biasName });
                var a = gr.Node("Softmax", new[] { s }, attrs: Int("axis", -1));
                var o = gr.Node("MatMul", new[] { a, Heads(qkvParts[2], 0, 2, 1, 3) });
                attnOut = gr.Node("Reshape", new[] { gr.Node("Transpose", new[] { o }, attrs: Ints("perm", 0, 2, 1, 3)), "shape_nta" });
            }
            else
            {
                var qkv = gr.Node("MatMul", new[] { h1, gr.Initializer($"{b}.attn.qkv.weight_t", qkvW, C, 3 * A) });
                if (qkvBias is not null) qkv = gr.Node("Add", new[] { qkv, gr.Initializer($"{b}.attn.qkv_bias", qkvBias, 3 * A) });
                var heads = gr.Node("Transpose", new[] { gr.Node("Reshape", new[] { qkv, "shape_qkv" }) }, attrs: Ints("perm", 2, 0, 3, 1, 4));
                var q = gr.Node("Mul", new[] { gr.Node("Gather", new[] { heads, "i0" }, attrs: Int("axis", 0)), "scale" });
                var k = gr.Node("Gather", new[] { heads, "i1" }, attrs: Int("axis", 0));
                var v = gr.Node("Gather", new[] { heads, "i2" }, attrs: Int("axis", 0));
                var s = gr.Node("MatMul", new[] { q, gr.Node("Transpose", new[] { k }, attrs: Ints("perm", 0, 1, 3, 2)) });
                if (biasName is not null) s = gr.Node("Add", new[] { s, biasName });
                var a = gr.Node("Softmax", new[] { s }, attrs: Int("axis", -1));
                var o = gr.Node("MatMul", new[] { a, v });
                attnOut = gr.Node("Reshape", new[] { gr.Node("Transpose", new[] { o }, attrs: Ints("perm", 0, 2, 1, 3)), "shape_nta" });
            }
            var proj = Linear(attnOut, $"{b}.attn.proj", A, C, fold ? gamma1 : null, deferBias: skipLn && fold);
            if (gamma1 is not null && !fold) proj = gr.Node("Mul", new[] { proj, gr.Initializer($"{b}.gamma_1", gamma1, C) });
            string h2;
            if (skipLn) (x, h2) = SkipLn(x, proj, $"{b}.norm2");
            else
            {
                x = gr.Node("Add", new[] { x, proj });
                h2 = LN(x, $"{b}.norm2");
            }
            var f1 = Linear(h2, $"{b}.mlp.fc1", C, hidden);
            // Exact (erf) GELU as torch's default: 0.5·x·(1 + erf(x/√2)); ORT's optimiser recognises this pattern.
            var erf = gr.Node("Erf", new[] { gr.Node("Div", new[] { f1, "sqrt2" }) });
            var gelu = gr.Node("Mul", new[] { gr.Node("Mul", new[] { f1, gr.Node("Add", new[] { erf, "one" }) }), "half" });
            var f2 = Linear(gelu, $"{b}.mlp.fc2", hidden, C, fold ? gamma2 : null, deferBias: skipLn && fold && i + 1 < c.Depth);
            if (gamma2 is not null && !fold) f2 = gr.Node("Mul", new[] { f2, gr.Initializer($"{b}.gamma_2", gamma2, C) });
            if (skipLn && i + 1 < c.Depth) (x, pendingNorm1) = SkipLn(x, f2, $"blocks.{i + 1}.norm1");
            else x = gr.Node("Add", new[] { x, f2 });

            (string Sum, string Normed) SkipLn(string input, string skip, string prefix)
            {
                var inputs = new List<string> { input, skip, gr.Initializer($"{prefix}.weight", W($"{prefix}.weight"), C), gr.Initializer($"{prefix}.bias", W($"{prefix}.bias"), C) };
                if (deferredBias is not null) inputs.Add(deferredBias);
                deferredBias = null;
                var outs = gr.NodeMulti("SkipLayerNormalization", inputs.ToArray(),
                    4, new[] { gr.Fresh("sln"), "", "", gr.Fresh("sum") }, "com.microsoft", Float("epsilon", eps));
                return (outs[3], outs[0]);
            }
            if (hiddenOutputs)
            {
                gr.Node("Identity", new[] { x }, $"hidden_{i}");
                gr.Output($"hidden_{i}", new long?[] { null, T, C });
            }
        }
        shared?.Dispose();

        string features;
        if (c.UseMeanPooling)
        {
            var patches = gr.Node("Slice", new[] { x, gr.Int64s("one1b", 1), gr.Int64s("big1", long.MaxValue), gr.Int64s("axis1", 1) });
            var mean = gr.Node("ReduceMean", new[] { patches }, attrs: new[] { Ints("axes", 1), Int("keepdims", 0) });
            features = gr.Node("LayerNormalization", new[] { mean, gr.Initializer("fc_norm.weight", W("fc_norm.weight"), C),
                gr.Initializer("fc_norm.bias", W("fc_norm.bias"), C) }, "features", attrs: new[] { Int("axis", -1), Float("epsilon", eps) });
        }
        else
        {
            var normed = gr.Node("LayerNormalization", new[] { x, gr.Initializer("norm.weight", W("norm.weight"), C),
                gr.Initializer("norm.bias", W("norm.bias"), C) }, attrs: new[] { Int("axis", -1), Float("epsilon", eps) });
            features = gr.Node("Gather", new[] { normed, "i0" }, "features", attrs: Int("axis", 1));
        }
        gr.Output("features", new long?[] { null, C });
        if (c.NumClasses > 0)
        {
            var y = gr.Node("MatMul", new[] { features, gr.Initializer("head.weight_t", WT("head.weight"), C, c.NumClasses) });
            gr.Node("Add", new[] { y, gr.Initializer("head.bias", W("head.bias"), c.NumClasses) }, "logits");
            gr.Output("logits", new long?[] { null, c.NumClasses });
        }
        // The state dict's tensors are the model's own parameters: not disposed here.
        return gr.ToModel(mode != AttentionMode.Standard || skipLn);
    }

    /// <summary>table (rows, H) gathered by the (T, T) index into (H, T, T), exactly as the model's own lookup.</summary>
    private static Tensor Gathered(Tensor table, Tensor index, long t)
    {
        using var scope = NewDisposeScope();
        return table.detach().index_select(0, index.view(-1)).view(t, t, -1).permute(2, 0, 1).contiguous().MoveToOuterDisposeScope();
    }

    private static float[] Floats(Tensor t)
    {
        using var c = t.detach().cpu().to_type(ScalarType.Float32).contiguous();
        return c.data<float>().ToArray();
    }
}
