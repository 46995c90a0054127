using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using static BeitV2.Ml.Onnx.OnnxGraph;

namespace BeitV2.Ml.Onnx;

/// <summary>How <see cref="OnnxInt8Quantizer"/> writes a quantised MatMul.</summary>
public enum Int8MatMulForm
{
    /// <summary>One <c>com.microsoft:DynamicQuantizeMatMul</c> (A float, B int8, per-column b_scale, the bias folded in).</summary>
    DynamicQuantizeMatMul,
    /// <summary>
    /// Standard ops as ONNX Runtime's Python <c>quantize_dynamic</c> writes them: <c>DynamicQuantizeLinear</c> →
    /// <c>MatMulInteger</c> → <c>Cast</c> → <c>Mul</c>(a_scale·b_scale), then the bias <c>Add</c>. ORT's level-2 optimiser
    /// fuses it back into <c>DynamicQuantizeMatMul</c>; kept for the measurement.
    /// </summary>
    MatMulInteger,
}

/// <summary>Options of <see cref="OnnxInt8Quantizer.Quantize"/>; the defaults are what serving uses.</summary>
/// <param name="Form">the operator(s) written per quantised MatMul.</param>
/// <param name="ReduceRange">
/// weights in 7 bits ([-64, 64]) instead of 8 ([-127, 127]): ONNX Runtime's <c>reduce_range</c>, for x86 CPUs without
/// VNNI, whose u8×s8 kernels (<c>vpmaddubsw</c>) add two products in a saturating 16-bit lane (255·127·2 > 32767).
/// Off by default: the serving CPU here has AVX512-VNNI (no 16-bit step), and on a CPU without it ORT's session option
/// <c>session.x64quantprecision=1</c> rewrites the int8 weights to uint8 (exact, u8u8 kernels) without halving the precision.
/// </param>
/// <param name="FoldBias">fold a following <c>Add</c> of a constant (N) bias into DynamicQuantizeMatMul's bias input.</param>
public sealed record OnnxInt8Options(Int8MatMulForm Form = Int8MatMulForm.DynamicQuantizeMatMul, bool ReduceRange = false, bool FoldBias = true)
{
    public static OnnxInt8Options Default { get; } = new();
}

/// <summary>
/// Dynamic int8 quantisation of an fp32 graph's weight MatMuls, done by us at export (no Python): every <c>MatMul(x, W)</c>
/// whose W is a constant 2-D float initializer (K, N) — the Linear layers our exporters write as MatMul with the
/// transposed weight, usually followed by <c>Add(bias)</c> — becomes a MatMul on int8 weights, quantised symmetrically per
/// output column (zero point 0, scale_j = max|W[:, j]| / 127), with the activation quantised to uint8 per tensor at run
/// time (<c>DynamicQuantizeLinear</c>: scale = (max(0, max x) − min(0, min x)) / 255). That is ONNX Runtime's recommended
/// x86 scheme for dynamic quantisation (activations QUInt8, weights QInt8, per channel; its quantisation docs and
/// <c>quantize_dynamic</c>), the u8×s8 kernel pair of its MLAS GEMMs.
/// </summary>
/// <remarks>
/// Everything else stays fp32: convolutions (patch embedding, UperNet), the attention's activation×activation MatMuls
/// (no constant operand), normalisations and element-wise ops. Also kept in fp32: a MatMul marked with
/// <see cref="KeepFp32"/> in its doc string, and one whose result reaches an <c>ArgMax</c>/<c>ArgMin</c>/<c>TopK</c>
/// through element-wise ops only (a nearest-code lookup such as VQ-KD's codebook similarity: rounding the codebook would
/// move near ties between codes, and the lookup is a small share of the work). The pass is idempotent (a quantised graph
/// has no float MatMul weights left) and returns a new model; the input is not changed.
/// </remarks>
public static class OnnxInt8Quantizer
{
    /// <summary>A MatMul node whose <c>doc_string</c> is this stays fp32.</summary>
    public const string KeepFp32 = "beitv2:keep-fp32";

    private const string MsDomain = "com.microsoft";

    // Nodes a value may pass through on its way to an arg-max and still be "the same scores" (a lookup's distance or similarity).
    private static readonly HashSet<string> ScoreOps = new(StringComparer.Ordinal)
        { "Add", "Sub", "Mul", "Div", "Neg", "Identity", "Transpose", "Reshape", "Squeeze", "Unsqueeze" };
    private static readonly HashSet<string> ArgOps = new(StringComparer.Ordinal) { "ArgMax", "ArgMin", "TopK" };

    /// <summary>The model with its weight MatMuls quantised (see the class remarks).</summary>
    public static ModelProto Quantize(ModelProto model, OnnxInt8Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= OnnxInt8Options.Default;
        var result = model.Clone();   // initializer bytes are immutable ByteStrings: shared, not copied
        var graph = result.Graph;

        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var n in graph.Node)
            foreach (var i in n.Input.Where(i => i.Length > 0))
                (consumers.TryGetValue(i, out var l) ? l : consumers[i] = new List<NodeProto>()).Add(n);
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var names = new HashSet<string>(initializers.Keys, StringComparer.Ordinal);
        foreach (var n in graph.Node) names.UnionWith(n.Output);
        string Fresh(string hint)
        {
            var name = hint;
            for (var k = 1; !names.Add(name); k++) name = $"{hint}_{k}";
            return name;
        }

        var quantised = new Dictionary<string, (string Weights, string Scale, int N)>(StringComparer.Ordinal);
        var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var nodes = new List<NodeProto>(graph.Node.Count);
        foreach (var node in graph.Node)
        {
            if (removed.Contains(node)) continue;
            if (!IsWeightMatMul(node, initializers, out var weight) || node.DocString == KeepFp32 || FeedsArgOp(node.Output[0], consumers))
            {
                nodes.Add(node);
                continue;
            }

            if (!quantised.TryGetValue(weight.Name, out var q))
            {
                var (k, n) = ((int)weight.Dims[0], (int)weight.Dims[1]);
                var w = QuantizeWeights(FloatData(weight), k, n, options.ReduceRange);
                var qName = Fresh($"{weight.Name}_int8");
                var sName = Fresh($"{weight.Name}_scale");
                graph.Initializer.Add(Tensor(qName, TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(w.Values.AsSpan()).ToArray(), k, n));
                graph.Initializer.Add(Tensor(sName, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(w.Scales.AsSpan()).ToArray(), n));
                quantised[weight.Name] = q = (qName, sName, n);
            }

            var x = node.Input[0];
            var y = node.Output[0];
            if (options.Form == Int8MatMulForm.DynamicQuantizeMatMul)
            {
                string bias = "";
                if (options.FoldBias && BiasAdd(y, q.N, consumers, initializers, graphOutputs) is { } add)
                {
                    bias = add.Input[0] == y ? add.Input[1] : add.Input[0];
                    y = add.Output[0];
                    removed.Add(add);
                }
                // Inputs: A, B, b_scale, b_zero_point (absent: 0), bias.
                var inputs = bias.Length > 0 ? new[] { x, q.Weights, q.Scale, "", bias } : new[] { x, q.Weights, q.Scale };
                nodes.Add(NewNode("DynamicQuantizeMatMul", MsDomain, node.Name, inputs, y));
            }
            else
            {
                // As onnxruntime.quantization writes a dynamic MatMul (QOperator format), so that ORT's fusions see their own pattern.
                string xq = Fresh($"{y}_x_quant"), xs = Fresh($"{y}_x_scale"), xzp = Fresh($"{y}_x_zero_point");
                string yi = Fresh($"{y}_int32"), yf = Fresh($"{y}_int32_float"), s = Fresh($"{y}_scale");
                var dql = NewNode("DynamicQuantizeLinear", "", $"{node.Name}_dql", new[] { x }, xq);
                dql.Output.Add(xs);
                dql.Output.Add(xzp);
                nodes.Add(dql);
                nodes.Add(NewNode("MatMulInteger", "", $"{node.Name}_int", new[] { xq, q.Weights, xzp }, yi));
                nodes.Add(NewNode("Cast", "", $"{node.Name}_cast", new[] { yi }, yf, Int("to", (long)TensorProto.Types.DataType.Float)));
                nodes.Add(NewNode("Mul", "", $"{node.Name}_scales", new[] { xs, q.Scale }, s));
                nodes.Add(NewNode("Mul", "", $"{node.Name}_dequant", new[] { yf, s }, y));
            }
        }
        // An Add folded into a DynamicQuantizeMatMul may come before the MatMul in the list only if the graph was unsorted:
        // ours are written in order, and ONNX requires topological order anyway.
        graph.Node.Clear();
        graph.Node.AddRange(nodes.Where(n => !removed.Contains(n)));

        // Drop the float weights nothing reads any more.
        var used = graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        used.UnionWith(graphOutputs);
        var keep = graph.Initializer.Where(t => used.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.AddRange(keep);

        if (quantised.Count > 0 && options.Form == Int8MatMulForm.DynamicQuantizeMatMul && result.OpsetImport.All(o => o.Domain != MsDomain))
            result.OpsetImport.Add(new OperatorSetIdProto { Domain = MsDomain, Version = 1 });
        return result;
    }

    /// <summary>Int8 weights of a (K, N) row-major matrix and one scale per column: W ≈ scale_j · q[k, j].</summary>
    public sealed record Int8Weights(sbyte[] Values, float[] Scales);

    /// <summary>
    /// Symmetric per-column quantisation of a (K, N) row-major matrix: scale_j = max_k |W[k, j]| / qmax (1 for an all-zero
    /// column), q = clamp(round_half_even(W / scale_j), −qmax, qmax), qmax = 127, or 64 with <paramref name="reduceRange"/>
    /// (onnxruntime.quantization's symmetric ranges: [-127, 127] keeps zero exact and the range symmetric; reduce_range
    /// [-64, 64]).
    /// </summary>
    public static Int8Weights QuantizeWeights(ReadOnlySpan<float> w, int k, int n, bool reduceRange = false)
    {
        if ((long)k * n != w.Length) throw new ArgumentException($"{w.Length} values are not a ({k}, {n}) matrix.", nameof(w));
        float qmax = reduceRange ? 64f : 127f;
        var scales = new float[n];
        for (var r = 0; r < k; r++)
        {
            var row = w.Slice(r * n, n);
            for (var j = 0; j < n; j++) scales[j] = MathF.Max(scales[j], MathF.Abs(row[j]));
        }
        for (var j = 0; j < n; j++)
        {
            if (!float.IsFinite(scales[j])) throw new InvalidDataException($"Column {j} of the weight holds a non-finite value: cannot quantise it.");
            scales[j] = scales[j] > 0 ? scales[j] / qmax : 1f;
        }
        var q = new sbyte[w.Length];
        for (var r = 0; r < k; r++)
            for (var j = 0; j < n; j++)
                q[r * n + j] = (sbyte)Math.Clamp(MathF.Round(w[r * n + j] / scales[j], MidpointRounding.ToEven), -qmax, qmax);
        return new Int8Weights(q, scales);
    }

    private static bool IsWeightMatMul(NodeProto node, Dictionary<string, TensorProto> initializers, out TensorProto weight)
    {
        weight = null!;
        return node.OpType == "MatMul" && (node.Domain is "" or "ai.onnx") && node.Input.Count == 2
            && initializers.TryGetValue(node.Input[1], out weight!)
            && weight.DataType == (int)TensorProto.Types.DataType.Float && weight.Dims.Count == 2
            && weight.DataLocation != TensorProto.Types.DataLocation.External;
    }

    /// <summary>Whether <paramref name="value"/> reaches an arg-max/arg-min through element-wise and reshaping ops only.</summary>
    private static bool FeedsArgOp(string value, Dictionary<string, List<NodeProto>> consumers, int depth = 0)
    {
        if (depth > 6 || !consumers.TryGetValue(value, out var next)) return false;
        foreach (var c in next)
        {
            if (ArgOps.Contains(c.OpType)) return true;
            if (ScoreOps.Contains(c.OpType) && c.Output.Any(o => FeedsArgOp(o, consumers, depth + 1))) return true;
        }
        return false;
    }

    /// <summary>The single <c>Add</c> of a constant float (N) vector that consumes <paramref name="y"/>, when nothing else does.</summary>
    private static NodeProto? BiasAdd(string y, int n, Dictionary<string, List<NodeProto>> consumers,
        Dictionary<string, TensorProto> initializers, HashSet<string> graphOutputs)
    {
        if (graphOutputs.Contains(y) || !consumers.TryGetValue(y, out var list) || list.Count != 1) return null;
        var add = list[0];
        if (add.OpType != "Add" || add.Domain is not ("" or "ai.onnx") || add.Input.Count != 2 || add.Input[0] == add.Input[1]) return null;
        var other = add.Input[0] == y ? add.Input[1] : add.Input[0];
        return initializers.TryGetValue(other, out var b) && b.DataType == (int)TensorProto.Types.DataType.Float
            && b.Dims.Count == 1 && b.Dims[0] == n ? add : null;
    }

    private static ReadOnlySpan<float> FloatData(TensorProto t) =>
        t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span) : t.FloatData.ToArray();

    private static TensorProto Tensor(string name, TensorProto.Types.DataType type, byte[] bytes, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = UnsafeByteOperations.UnsafeWrap(bytes) };
        t.Dims.AddRange(dims);
        return t;
    }

    private static NodeProto NewNode(string op, string domain, string name, string[] inputs, string output, params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Domain = domain, Name = name };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attrs);
        return n;
    }
}
