using static BeitV2.Ml.Onnx.OnnxGraph;
using static TorchSharp.torch;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// The common layers written as ONNX nodes from a module's state dict (<see cref="Weights"/>): Linear, LayerNorm,
/// exact GELU. Initializers are named after the state-dict keys (a transposed Linear weight gets <c>_t</c>); a layer
/// written twice (MIM's shared norm and lm_head serve both branches) reuses the constants written the first time.
/// </summary>
public static class OnnxLayers
{
    /// <summary>A module's state dict by key. The tensors are the module's own: never dispose them.</summary>
    public static IReadOnlyDictionary<string, Tensor> Weights(nn.Module module) => module.state_dict();

    /// <summary>x·Wᵀ + b of <c>nn.Linear</c> <paramref name="key"/> (weight (out, in) stored transposed for MatMul).</summary>
    public static string Linear(this OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, string key, string x, bool bias = true)
    {
        var wt = $"{key}.weight_t";
        if (!g.HasInitializer(wt))
            using (var t = sd[$"{key}.weight"].detach().t()) g.Initializer(wt, t);
        var y = g.Node("MatMul", new[] { x, wt });
        return bias && sd.TryGetValue($"{key}.bias", out var b) ? g.Node("Add", new[] { y, g.Constant($"{key}.bias", b) }) : y;
    }

    /// <summary><c>nn.LayerNorm</c> <paramref name="key"/> over the last axis.</summary>
    public static string LayerNorm(this OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, string key, string x, double eps, string? output = null) =>
        g.Node("LayerNormalization", new[] { x, g.Constant($"{key}.weight", sd[$"{key}.weight"]), g.Constant($"{key}.bias", sd[$"{key}.bias"]) },
            output, attrs: new[] { Int("axis", -1), Float("epsilon", (float)eps) });

    /// <summary>The float32 constant <paramref name="name"/>: written from <paramref name="value"/> unless the graph has it already.</summary>
    public static string Constant(this OnnxGraph g, string name, Tensor value) => g.HasInitializer(name) ? name : g.Initializer(name, value);

    /// <summary>
    /// torch's default (exact, erf) GELU, 0.5·x·(1 + erf(x/√2)): opset 17 has no Gelu, and ONNX Runtime's optimiser
    /// fuses this pattern (with the preceding bias) into BiasGelu.
    /// </summary>
    public static string Gelu(this OnnxGraph g, string x)
    {
        var erf = g.Node("Erf", new[] { g.Node("Div", new[] { x, g.Scalar("gelu_sqrt2", MathF.Sqrt(2f)) }) });
        return g.Node("Mul", new[] { g.Node("Mul", new[] { x, g.Node("Add", new[] { erf, g.Scalar("gelu_one", 1f) }) }), g.Scalar("gelu_half", 0.5f) });
    }

    /// <summary>Softmax over the last axis.</summary>
    public static string Softmax(this OnnxGraph g, string x, string? output = null) => g.Node("Softmax", new[] { x }, output, attrs: Int("axis", -1));

    /// <summary>x[:, index] along axis 1 (the axis is dropped), e.g. the [CLS] token of (B, T, C).</summary>
    public static string TokenAt(this OnnxGraph g, string x, long index, string? output = null) =>
        g.Node("Gather", new[] { x, g.Int64Scalar($"index_{index}", index) }, output, attrs: Int("axis", 1));

    /// <summary>x[:, 1:] of (B, T, C): the patch tokens.</summary>
    public static string PatchTokens(this OnnxGraph g, string x) =>
        g.Node("Slice", new[] { x, g.Int64s("slice_from_1", 1), g.Int64s("slice_to_end", long.MaxValue), g.Int64s("slice_axis_1", 1) });

    /// <summary>Mean over axis 1 without keeping it: (B, T, C) → (B, C).</summary>
    public static string MeanOverTokens(this OnnxGraph g, string x, string? output = null) =>
        g.Node("ReduceMean", new[] { x }, output, attrs: new[] { Ints("axes", 1), Int("keepdims", 0) });
}
