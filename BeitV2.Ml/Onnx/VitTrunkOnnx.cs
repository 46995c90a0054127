using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using static BeitV2.Ml.Onnx.OnnxGraph;
using static TorchSharp.torch;

namespace BeitV2.Ml.Onnx;

/// <summary>What <see cref="VitTrunkOnnx.Write"/> wrote.</summary>
/// <param name="Tokens">The last block's raw output (B, T, C), [CLS] first; no final norm.</param>
/// <param name="Hidden">Raw output of every block, in order (the last equals <paramref name="Tokens"/>).</param>
/// <param name="SharedBias">The initializer of the shared relative position bias (1, H, T, T), or null: heads that
/// continue with more blocks (MIM's aggregation head) add the same one.</param>
public sealed record TrunkGraph(string Tokens, IReadOnlyList<string> Hidden, string? SharedBias);

/// <summary>
/// <see cref="VitTrunk"/> as ONNX nodes: patch embedding (Conv), [MASK] substitution, [CLS], absolute position
/// embedding and the block stack, op for op as <see cref="VitTrunk.Forward"/>. Relative position biases are looked
/// up once here (the model's own index gather) and stored as one constant (1, H, T, T) per block, the shared one added
/// in, so the graph does no gathering at run time. Written with standard opset-17 ops only: on the CPU, ONNX Runtime's
/// own fusions (BiasGelu, FusedMatMul) were as fast as hand-written com.microsoft Attention/SkipLayerNormalization
/// (docs/notes/onnx-probe-2026-12.md).
/// </summary>
public static class VitTrunkOnnx
{
    /// <param name="g">the graph being written.</param>
    /// <param name="owner">the model holding the trunk's weights (its state dict, under <paramref name="prefix"/>).</param>
    /// <param name="trunk">the trunk (config, blocks).</param>
    /// <param name="prefix">the trunk's key prefix in <paramref name="owner"/>'s state dict ("" or e.g. "encoder.").</param>
    /// <param name="images">the (B, 3, S, S) input value.</param>
    /// <param name="boolMaskedPos">a (B, N) bool input value for the [MASK] embedding (trunks with one), or null.</param>
    public static TrunkGraph Write(OnnxGraph g, nn.Module owner, VitTrunk trunk, string prefix, string images, string? boolMaskedPos = null)
    {
        var sd = OnnxLayers.Weights(owner);
        var c = trunk.Config;
        long C = c.EmbedDim, p = c.PatchSize, T = trunk.NumPatches + 1;

        // Patch embedding: Conv → (B, C, g, g) → (B, C, N) → (B, N, C).
        var pe = g.Node("Conv", new[] { images, g.Initializer($"{prefix}patch_embed.proj.weight", sd[$"{prefix}patch_embed.proj.weight"]),
            g.Initializer($"{prefix}patch_embed.proj.bias", sd[$"{prefix}patch_embed.proj.bias"]) },
            attrs: new[] { Ints("kernel_shape", p, p), Ints("strides", p, p) });
        var x = g.Node("Transpose", new[] { g.Node("Reshape", new[] { pe, g.Int64s("shape_b_c_n", 0, C, -1) }) }, attrs: Ints("perm", 0, 2, 1));

        if (boolMaskedPos is not null)
        {
            // BEiT's masking: x·(1−w) + mask_token·w, w the mask as a float (B, N, 1).
            var w = g.Node("Unsqueeze", new[] { g.Node("Cast", new[] { boolMaskedPos }, attrs: Int("to", (long)global::Onnx.TensorProto.Types.DataType.Float)),
                g.Int64s("axes_last", -1) });
            var keep = g.Node("Sub", new[] { g.Scalar("one", 1f), w });
            x = g.Node("Add", new[] { g.Node("Mul", new[] { x, keep }),
                g.Node("Mul", new[] { g.Initializer($"{prefix}mask_token", sd[$"{prefix}mask_token"]), w }) });
        }

        // [CLS]: (1, 1, C) expanded to (B, 1, C), B read from the input's shape.
        var batch = g.Node("Slice", new[] { g.Node("Shape", new[] { images }), g.Int64s("slice_0", 0), g.Int64s("slice_1", 1) });
        var clsShape = g.Node("Concat", new[] { batch, g.Int64s("shape_1_c", 1, C) }, attrs: Int("axis", 0));
        var cls = g.Node("Expand", new[] { g.Initializer($"{prefix}cls_token", sd[$"{prefix}cls_token"]), clsShape });
        x = g.Node("Concat", new[] { cls, x }, attrs: Int("axis", 1));
        if (c.UseAbsPosEmb) x = g.Node("Add", new[] { x, g.Initializer($"{prefix}pos_embed", sd[$"{prefix}pos_embed"]) });

        // The shared bias: a constant, or gathered at run time from its table when too large to keep (see RuntimeBias).
        using var sharedBias = Large(g, c) ? null : SharedBias(trunk);
        string? shared = null;
        if (trunk.SharedRelPosBias is not null)
            shared = sharedBias is not null
                ? g.Initializer($"{prefix}rel_pos_bias.bias", sharedBias)
                : RuntimeBias(g, sd, $"{prefix}rel_pos_bias", c, x);

        var hidden = new List<string>(trunk.Depth);
        for (var i = 0; i < trunk.Depth; i++)
        {
            x = WriteBlock(g, sd, $"{prefix}blocks.{i}", trunk.Blocks[i], c, x, shared, sharedBias);
            hidden.Add(x);
        }
        return new TrunkGraph(x, hidden, shared);
    }

    /// <summary>The shared relative position bias (1, H, T, T) of a trunk that has one, else null.</summary>
    public static Tensor? SharedBias(VitTrunk trunk)
    {
        if (trunk.SharedRelPosBias is not { } module) return null;
        using var bias = module.forward();
        return bias.detach().unsqueeze(0).contiguous();
    }

    /// <summary>
    /// One BEiT block (<see cref="Block.forward"/>): x + γ1·attn(norm1(x)) then x + γ2·mlp(norm2(x)), with the block's own
    /// relative bias and the shared one summed into one constant.
    /// </summary>
    /// <param name="key">the block's state-dict prefix, e.g. "blocks.3" or "cls_pt_layers.0".</param>
    /// <param name="shared">the initializer of the shared bias (used as is by blocks without their own), or null.</param>
    /// <param name="sharedBias">the shared bias (1, H, T, T) (summed into the constant of blocks with their own), or null.</param>
    public static string WriteBlock(OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, string key, Block block, VitTrunkConfig c, string x,
        string? shared, Tensor? sharedBias)
    {
        long C = c.EmbedDim, H = c.NumHeads, D = c.AttnHeadDim ?? c.EmbedDim / c.NumHeads, A = D * H;
        var scale = (float)(c.QkScale ?? Math.Pow(D, -0.5));
        var eps = c.NormEps;

        // The additive attention bias of this block: own table (looked up by the model's index) + the shared one.
        string? biasName = null;
        if (block.Attn.HasOwnRelativeBias && Large(g, c))
        {
            var own = RuntimeBias(g, sd, $"{key}.attn", c, x);
            biasName = shared is null ? own : g.Node("Add", new[] { own, shared });
        }
        else if (block.Attn.HasOwnRelativeBias)
        {
            using var scope = NewDisposeScope();
            var own = RelativePositionBias.Lookup(block.Attn, (c.GridSize, c.GridSize)).detach().unsqueeze(0);
            if (sharedBias is not null) own = own + sharedBias;
            biasName = g.Initializer($"{key}.attn.bias", own);
        }
        else if (shared is not null)
        {
            biasName = shared;
        }

        var h = g.LayerNorm(sd, $"{key}.norm1", x, eps);
        var qkv = g.Linear(sd, $"{key}.attn.qkv", h, bias: false);
        if (sd.TryGetValue($"{key}.attn.q_bias", out var qb))
        {
            using var qkvBias = cat(new[] { qb.detach(), zeros_like(qb), sd[$"{key}.attn.v_bias"].detach() });
            qkv = g.Node("Add", new[] { qkv, g.Initializer($"{key}.attn.qkv_bias", qkvBias) });
        }
        // (B, T, 3A) → (3, B, H, T, D); q·scale, k, v by Gather with a scalar index (drops the axis).
        var heads = g.Node("Transpose", new[] { g.Node("Reshape", new[] { qkv, g.Int64s($"shape_qkv_{H}_{D}", 0, 0, 3, H, D) }) },
            attrs: Ints("perm", 2, 0, 3, 1, 4));
        string Part(long i) => g.Node("Gather", new[] { heads, g.Int64Scalar($"index_{i}", i) }, attrs: Int("axis", 0));
        var q = g.Node("Mul", new[] { Part(0), g.Scalar($"{key}.attn.scale", scale) });
        var k = Part(1);
        var v = Part(2);
        var s = g.Node("MatMul", new[] { q, g.Node("Transpose", new[] { k }, attrs: Ints("perm", 0, 1, 3, 2)) });
        if (biasName is not null) s = g.Node("Add", new[] { s, biasName });
        var o = g.Node("MatMul", new[] { g.Softmax(s), v });
        o = g.Node("Reshape", new[] { g.Node("Transpose", new[] { o }, attrs: Ints("perm", 0, 2, 1, 3)), g.Int64s($"shape_b_t_{A}", 0, 0, A) });
        var a = g.Linear(sd, $"{key}.attn.proj", o);
        if (sd.TryGetValue($"{key}.gamma_1", out var g1)) a = g.Node("Mul", new[] { a, g.Initializer($"{key}.gamma_1", g1) });
        x = g.Node("Add", new[] { x, a });

        var m = g.Linear(sd, $"{key}.mlp.fc2", g.Gelu(g.Linear(sd, $"{key}.mlp.fc1", g.LayerNorm(sd, $"{key}.norm2", x, eps))));
        if (sd.TryGetValue($"{key}.gamma_2", out var g2)) m = g.Node("Mul", new[] { m, g.Initializer($"{key}.gamma_2", g2) });
        return g.Node("Add", new[] { x, m });
    }

    /// <summary>
    /// Whether a (1, H, T, T) bias is above the graph's <see cref="OnnxGraph.ConstantBiasLimit"/>: a 512 px Base segmenter
    /// would carry 50 MB of constants per block (605 MB in all, more than its weights), where the table is 0.2 MB.
    /// </summary>
    private static bool Large(OnnxGraph g, VitTrunkConfig c)
    {
        long t = c.NumPatches + 1;
        return (long)c.NumHeads * t * t > g.ConstantBiasLimit;
    }

    /// <summary>
    /// The bias (1, H, T, T) of <c>{key}.relative_position_bias_table</c> gathered at run time with the model's index
    /// (as <c>RelativePositionBias.Lookup</c>: table[index] viewed (T, T, H), heads first), for biases too large to store.
    /// The index is offset by 0·B (B read from <paramref name="anchor"/>'s shape) so that ONNX Runtime's constant folding,
    /// which would otherwise turn the gather back into the large constant at session creation, cannot evaluate it.
    /// </summary>
    private static string RuntimeBias(OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, string key, VitTrunkConfig c, string anchor)
    {
        long t = c.NumPatches + 1;
        var indexName = $"relative_position_index_{c.GridSize}";
        if (!g.HasInitializer(indexName))
        {
            var index = RelativePositionIndex.Build(c.GridSize, c.GridSize);
            var bytes = new byte[index.Length * sizeof(long)];
            Buffer.BlockCopy(index, 0, bytes, 0, bytes.Length);
            g.Raw(indexName, global::Onnx.TensorProto.Types.DataType.Int64, bytes, index.Length);
        }
        var batch = g.Node("Slice", new[] { g.Node("Shape", new[] { anchor }), g.Int64s("slice_0", 0), g.Int64s("slice_1", 1) });
        var zero = g.Node("Mul", new[] { batch, g.Int64s("zero_i64", 0) });
        var index2 = g.Node("Add", new[] { indexName, zero });
        var table = g.Initializer($"{key}.{RelativePositionBias.TableName}", sd[$"{key}.{RelativePositionBias.TableName}"]);
        var gathered = g.Node("Gather", new[] { table, index2 }, attrs: Int("axis", 0));
        var viewed = g.Node("Reshape", new[] { gathered, g.Int64s($"shape_1_{t}_{t}_h", 1, t, t, -1) });
        return g.Node("Transpose", new[] { viewed }, attrs: Ints("perm", 0, 3, 1, 2));
    }
}
