using BeitV2.Ml.Catalog;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using Onnx;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// <see cref="OnnxInt8Quantizer"/>: which nodes it quantises, how (per-column symmetric int8), and how far the quantised
/// graph may drift from fp32. int8 is a different precision, not an approximation of the parity path, so the bounds
/// here come from the quantisation step sizes, never from the strict parity tolerance.
/// </summary>
public sealed class OnnxInt8QuantizerTests
{
    // A ViT with every feature of the served ones (relative position bias per block, layer scale, mean pooling, head):
    // 32 px, 8 px patches (17 tokens), 64 wide, 2 blocks, 4 heads, 10 classes.
    private static readonly VitConfig Config = VitConfig.Micro(numClasses: 10) with { EmbedDim = 64, NumHeads = 4 };

    // Linear layers per block (qkv, proj, fc1, fc2) plus the head: the MatMuls with a constant weight.
    private static readonly int WeightMatMuls = 4 * Config.Depth + 1;
    // q·kᵀ and attention·v per block: activation × activation, never quantised.
    private static readonly int ActivationMatMuls = 2 * Config.Depth;

    [Fact]
    public void QuantisesExactlyTheWeightMatMuls()
    {
        using var model = RandomVit(seed: 1);
        var entry = ModelCatalog.Default.EntryOf(model)!;
        var fp32 = entry.ExportOnnx(model, new OnnxExportOptions());
        var int8 = entry.ExportOnnx(model, new OnnxExportOptions(Precision: OnnxPrecision.Int8));

        var weights = fp32.Graph.Initializer.Select(t => t.Name).ToHashSet();
        Assert.Equal(WeightMatMuls, fp32.Graph.Node.Count(n => n.OpType == "MatMul" && weights.Contains(n.Input[1])));
        Assert.Equal(WeightMatMuls + ActivationMatMuls, Count(fp32, "MatMul"));

        Assert.Equal(WeightMatMuls, Count(int8, "DynamicQuantizeMatMul"));
        Assert.All(int8.Graph.Node.Where(n => n.OpType == "DynamicQuantizeMatMul"), n => Assert.Equal("com.microsoft", n.Domain));
        Assert.Equal(ActivationMatMuls, Count(int8, "MatMul"));
        var int8Inits = int8.Graph.Initializer.ToDictionary(t => t.Name);
        Assert.All(int8.Graph.Node.Where(n => n.OpType == "MatMul"), n => Assert.DoesNotContain(n.Input[1], int8Inits.Keys));
        Assert.Equal(Count(fp32, "Conv"), Count(int8, "Conv"));                 // the patch embedding stays fp32
        // Each Linear's bias (and the qkv bias) is folded into its DynamicQuantizeMatMul: one Add fewer per weight MatMul.
        Assert.Equal(Count(fp32, "Add") - WeightMatMuls, Count(int8, "Add"));
        Assert.All(int8.Graph.Node.Where(n => n.OpType == "DynamicQuantizeMatMul"), n => Assert.Equal(5, n.Input.Count));
        // The weights are int8 now, their fp32 copies gone; one fp32 scale per output column.
        Assert.Equal(WeightMatMuls, int8.Graph.Initializer.Count(t => t.DataType == (int)TensorProto.Types.DataType.Int8));
        Assert.DoesNotContain(int8.Graph.Initializer, t => t.Name.EndsWith(".weight_t", StringComparison.Ordinal));
        foreach (var n in int8.Graph.Node.Where(n => n.OpType == "DynamicQuantizeMatMul"))
            Assert.Equal(int8Inits[n.Input[1]].Dims[1], Assert.Single(int8Inits[n.Input[2]].Dims));
        Assert.Contains(int8.OpsetImport, o => o.Domain == "com.microsoft" && o.Version == 1);
        Assert.True(int8.CalculateSize() < fp32.CalculateSize() / 2);

        // Idempotent: nothing float is left to quantise.
        var again = OnnxInt8Quantizer.Quantize(int8);
        Assert.Equal(int8.Graph.Node.Select(n => n.OpType), again.Graph.Node.Select(n => n.OpType));

        // The standard-op form writes ORT's quantize_dynamic pattern once per weight MatMul, bias Adds kept.
        var standard = OnnxInt8Quantizer.Quantize(fp32, new OnnxInt8Options(Int8MatMulForm.MatMulInteger));
        Assert.Equal(WeightMatMuls, Count(standard, "DynamicQuantizeLinear"));
        Assert.Equal(WeightMatMuls, Count(standard, "MatMulInteger"));
        Assert.Equal(ActivationMatMuls, Count(standard, "MatMul"));
        Assert.Equal(Count(fp32, "Add"), Count(standard, "Add"));
        Assert.Equal(0, Count(standard, "DynamicQuantizeMatMul"));
    }

    [Fact]
    public void KeepsLookupsAndMarkedMatMulsInFp32()
    {
        // x → MatMul(W1) → h (output); h → MatMul(W2) marked keep-fp32 → h2; a nearest-code lookup written as VQ-KD's
        // exporter writes it: ArgMin(‖h2‖² − 2·h2·codebookᵀ) (the codes' norms dropped here); and a similarity ArgMax.
        var g = new OnnxGraph("lookup");
        g.Input("x", new long?[] { null, 8 });
        var rng = new Random(3);
        float[] Rand(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var h = g.Node("MatMul", new[] { "x", g.Initializer("w1", Rand(8 * 16), 8, 16) });
        var h2 = g.Node("MatMul", new[] { h, g.Initializer("w2", Rand(16 * 16), 16, 16) });
        var dot = g.Node("Mul", new[] { g.Node("MatMul", new[] { h2, g.Initializer("codebook_t", Rand(16 * 32), 16, 32) }), g.Scalar("two", 2f) });
        var zSq = g.Node("ReduceSumSquare", new[] { h2 }, attrs: new[] { OnnxGraph.Ints("axes", -1), OnnxGraph.Int("keepdims", 1) });
        g.Node("ArgMin", new[] { g.Node("Sub", new[] { zSq, dot }) }, "ids", attrs: new[] { OnnxGraph.Int("axis", -1), OnnxGraph.Int("keepdims", 0) });
        var similarity = g.Node("MatMul", new[] { h, g.Initializer("prototypes_t", Rand(16 * 8), 16, 8) });
        g.Node("ArgMax", new[] { similarity }, "best", attrs: new[] { OnnxGraph.Int("axis", -1), OnnxGraph.Int("keepdims", 0) });
        g.OutputAs(h, "h", new long?[] { null, 16 });
        g.Output("ids", new long?[] { null }, TensorProto.Types.DataType.Int64);
        g.Output("best", new long?[] { null }, TensorProto.Types.DataType.Int64);
        var model = g.ToModel();
        model.Graph.Node.Single(n => n.Output[0] == h2).DocString = OnnxInt8Quantizer.KeepFp32;

        var int8 = OnnxInt8Quantizer.Quantize(model);

        var dq = Assert.Single(int8.Graph.Node, n => n.OpType == "DynamicQuantizeMatMul");
        Assert.Equal("x", dq.Input[0]);
        Assert.Equal(new[] { "w2", "codebook_t", "prototypes_t" }, int8.Graph.Node.Where(n => n.OpType == "MatMul").Select(n => n.Input[1]));
        Assert.Equal(new[] { "codebook_t", "prototypes_t", "two", "w2" }, int8.Graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float
            && !t.Name.EndsWith("_scale", StringComparison.Ordinal)).Select(t => t.Name).Order(StringComparer.Ordinal));
        using var scope = NewDisposeScope();
        var outputs = OnnxTestRun.Run(int8, new Dictionary<string, Tensor> { ["x"] = randn(3, 8) });
        Assert.Equal(new long[] { 3 }, outputs["ids"].shape);
        Assert.Equal(new long[] { 3 }, outputs["best"].shape);
    }

    [Fact]
    public void WeightsAreSymmetricPerOutputColumn()
    {
        // (K=4, N=3), values chosen so that the steps are exact: column 0 max 127 (step 1), column 1 all zero, column 2 max 254 (step 2).
        float[] w =
        {
            63.5f, 0f, 254f,
            -127f, 0f, 5f,
            62.5f, 0f, -3f,
            0.4f, 0f, 0f,
        };
        var q = OnnxInt8Quantizer.QuantizeWeights(w, 4, 3);
        Assert.Equal(new[] { 1f, 1f, 2f }, q.Scales);    // an all-zero column gets step 1 (its values are 0 anyway)
        // Half to even: 63.5 → 64, 62.5 → 62, 2.5 → 2, −1.5 → −2; the column maximum maps to ±127.
        Assert.Equal(new sbyte[] { 64, 0, 127, -127, 0, 2, 62, 0, -2, 0, 0, 0 }, q.Values);
        for (var i = 0; i < w.Length; i++)
            Assert.True(Math.Abs(w[i] - q.Scales[i % 3] * q.Values[i]) <= q.Scales[i % 3] / 2, $"element {i}");

        var reduced = OnnxInt8Quantizer.QuantizeWeights(w, 4, 3, reduceRange: true);
        Assert.Equal(64, reduced.Values.Max(v => Math.Abs((int)v)));
        Assert.Equal(127f / 64, reduced.Scales[0]);
    }

    [Fact]
    public void OneLinearStaysWithinItsStepSizeBound()
    {
        // y = x·W + b with K = 96 inputs, N = 40 outputs, on (2, 5, 96) activations with an outlier (a wide uint8 step).
        const int B = 2, T = 5, K = 96, N = 40;
        var rng = new Random(7);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var w = Enumerable.Range(0, K * N).Select(_ => (float)(Gauss() / Math.Sqrt(K))).ToArray();
        var b = Enumerable.Range(0, N).Select(_ => (float)(0.1 * Gauss())).ToArray();
        var x = Enumerable.Range(0, B * T * K).Select(_ => (float)Gauss()).ToArray();
        x[17] = 9f;

        var g = new OnnxGraph("linear");
        g.Input("x", new long?[] { null, T, K });
        g.OutputAs(g.Node("Add", new[] { g.Node("MatMul", new[] { "x", g.Initializer("w_t", w, K, N) }), g.Initializer("b", b, N) }), "y",
            new long?[] { null, T, N });
        var int8 = OnnxInt8Quantizer.Quantize(g.ToModel());
        Assert.Single(int8.Graph.Node, n => n.OpType == "DynamicQuantizeMatMul");

        using var scope = NewDisposeScope();
        var y = OnnxTestRun.Run(int8, new Dictionary<string, Tensor> { ["x"] = tensor(x, new long[] { B, T, K }) })["y"].data<float>().ToArray();

        // Activation step (DynamicQuantizeLinear, uint8 over the range widened to include 0) and weight steps per column.
        double sa = (Math.Max(0, x.Max()) - Math.Min(0, x.Min())) / 255.0;
        var sw = OnnxInt8Quantizer.QuantizeWeights(w, K, N).Scales;
        double worstShare = 0, maxErr = 0;
        for (var r = 0; r < B * T; r++)
            for (var j = 0; j < N; j++)
            {
                double exact = b[j], sumAbsW = 0, sumAbsX = 0, mag = Math.Abs(b[j]);
                for (var k = 0; k < K; k++)
                {
                    exact += (double)x[r * K + k] * w[k * N + j];
                    sumAbsW += Math.Abs(w[k * N + j]);
                    sumAbsX += Math.Abs(x[r * K + k]) + sa / 2;     // |x̂_k| ≤ |x_k| + sa/2
                    mag += Math.Abs((double)x[r * K + k] * w[k * N + j]);
                }
                // y − ŷ = Σ (x−x̂)·W + x̂·(W−Ŵ), |x−x̂| ≤ sa/2, |W−Ŵ| ≤ sw_j/2; plus float32 rounding of ORT's dequantised sum.
                var bound = sa / 2 * sumAbsW + sw[j] / 2 * sumAbsX + 1e-5 * mag;
                var err = Math.Abs(y[r * N + j] - exact);
                worstShare = Math.Max(worstShare, err / bound);
                maxErr = Math.Max(maxErr, err);
            }
        Assert.True(worstShare <= 1, $"an output is off by {worstShare:F2} of its step-size bound");
        Assert.True(maxErr > 1e-4, "the output equals fp32: nothing was quantised");
    }

    [Fact]
    public void QuantisedVitStaysCloseToFp32AndAgreesOnTop1()
    {
        using var model = RandomVit(seed: 2);
        var entry = ModelCatalog.Default.EntryOf(model)!;
        var fp32 = entry.ExportOnnx(model, new OnnxExportOptions(Diagnostics: true));
        var int8 = entry.ExportOnnx(model, new OnnxExportOptions(OnnxPrecision.Int8, Diagnostics: true));
        using var scope = NewDisposeScope();
        manual_seed(5);
        var images = new Dictionary<string, Tensor> { [OnnxNames.Images] = randn(64, 3, Config.ImgSize, Config.ImgSize) };
        var a = OnnxTestRun.Run(fp32, images);
        var q = OnnxTestRun.Run(int8, images);

        foreach (var name in new[] { "logits", OnnxNames.Mean, OnnxNames.Cls })
        {
            var rel = (q[name] - a[name]).norm().item<float>() / a[name].norm().item<float>();
            Assert.True(rel <= RelativeBound, $"{name}: relative RMS error {rel:P2} > {RelativeBound:P2}");
            Assert.True(rel > 1e-4, $"{name}: int8 equals fp32 ({rel:E1}): nothing was quantised");
        }

        // Top-1: every image whose fp32 margin between the two best classes is beyond the int8 error must keep its class;
        // the error of a logit is taken as 4 × the relative bound × the logits' RMS (4σ).
        var logits = a["logits"];
        var maxErr = 4 * RelativeBound * logits.square().mean().sqrt().item<float>();
        var top2 = logits.topk(2, dim: 1).values;
        var margin = (top2[.., 0] - top2[.., 1]).data<float>().ToArray();
        var same = logits.argmax(1).eq(q["logits"].argmax(1)).data<bool>().ToArray();
        var clear = Enumerable.Range(0, margin.Length).Where(i => margin[i] > 2 * maxErr).ToList();
        // With 10 Gaussian-like logits the two best differ by more than 8 × 7 % of the RMS in about a third of the images.
        Assert.True(clear.Count >= margin.Length / 4, $"only {clear.Count} of {margin.Length} images have a clear top-1: the test says little");
        Assert.All(clear, i => Assert.True(same[i], $"image {i}: top-1 changed with a fp32 margin of {margin[i]:F3}"));
        Assert.True(same.Count(s => s) >= clear.Count);
    }

    [Fact]
    public void QuantisedGraphRunsAtBatchSizesOneToFour()
    {
        using var model = RandomVit(seed: 3);
        var int8 = ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, new OnnxExportOptions(Precision: OnnxPrecision.Int8));
        using var scope = NewDisposeScope();
        manual_seed(6);
        var all = randn(4, 3, Config.ImgSize, Config.ImgSize);
        Tensor? alone = null;
        for (var batch = 1; batch <= 4; batch++)
        {
            var outputs = OnnxTestRun.Run(int8, new Dictionary<string, Tensor> { [OnnxNames.Images] = all[..batch] });
            Assert.Equal(new long[] { batch, Config.NumClasses }, outputs[OnnxNames.Probs].shape);
            Assert.Equal(new long[] { batch, Config.EmbedDim }, outputs[OnnxNames.Mean].shape);
            Assert.Equal(new long[] { batch, Config.EmbedDim }, outputs[OnnxNames.Cls].shape);
            Assert.True(outputs[OnnxNames.Probs].sum(1).sub(1).abs().max().item<float>() < 1e-5);
            // Activations are quantised per tensor, over the whole batch: image 0's features depend (within the
            // quantisation error) on the images batched with it; they are not bit-identical across batch sizes.
            var mean0 = outputs[OnnxNames.Mean][0];
            alone ??= mean0;
            var rel = (mean0 - alone).norm().item<float>() / alone.norm().item<float>();
            Assert.True(rel <= 2 * RelativeBound, $"batch {batch}: image 0 moved by {rel:P2}");
        }
    }

    /// <summary>
    /// Relative RMS error allowed between int8 and fp32 outputs of the test ViT, from the step sizes. One quantised
    /// MatMul y = x·W adds the rounding errors Σ_k e^x_k·W_kj + x̂_k·e^W_kj; rounding errors are uniform within ±step/2
    /// (variance step²/12) and independent, so relative to y's RMS (√K·rms(x)·rms(W)) its error is
    /// √((s_x/rms x)² + (s_W/rms W)²)/√12 with s_x = range(x)/255 and s_W = max|W_j|/127. For Gaussian weights with
    /// K ≤ 256 inputs, max/rms ≤ 4.5; activation range/rms ≤ 16 (LayerNorm outputs ~9, GELU outputs are skewed, wider):
    /// ε = √((16/255)² + (4.5/127)²)/√12 ≈ 2.1 % per MatMul. Nine MatMuls lie on every path (4 per block, the head);
    /// their errors are independent and LayerNorm and the residual stream do not amplify relative error, so they add in
    /// quadrature: √9 · 2.1 % ≈ 6.2 %; the bound is 7 %.
    /// </summary>
    private const double RelativeBound = 0.07;

    private static int Count(ModelProto m, string op) => m.Graph.Node.Count(n => n.OpType == op);

    /// <summary>
    /// The test ViT with weights of a trained model's scale rather than the init's (whose head is scaled by 0.001 and
    /// whose relative biases are zero): Linear and conv weights N(0, 1/fan_in), LayerNorm weights 1 ± 0.1, layer scales
    /// 0.5 ± 0.1, relative bias tables N(0, 0.5²), other biases and tokens N(0, 0.02²).
    /// </summary>
    private static BeitVisionTransformer RandomVit(int seed)
    {
        manual_seed(seed);
        var model = new BeitVisionTransformer(Config);
        model.eval();
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            Tensor value = name switch
            {
                _ when name.EndsWith("weight", StringComparison.Ordinal) && p.dim() >= 2 =>
                    randn(p.shape) / Math.Sqrt(p.shape.Skip(1).Aggregate(1L, (x, y) => x * y)),
                _ when name.Contains("norm", StringComparison.Ordinal) && name.EndsWith("weight", StringComparison.Ordinal) => 1 + 0.1 * randn(p.shape),
                _ when name.Contains("gamma", StringComparison.Ordinal) => 0.5 + 0.1 * randn(p.shape),
                _ when name.Contains("relative_position_bias_table", StringComparison.Ordinal) => 0.5 * randn(p.shape),
                _ => 0.02 * randn(p.shape),
            };
            p.copy_(value);
        }
        return model;
    }
}
