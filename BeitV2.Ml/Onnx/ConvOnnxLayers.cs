using static BeitV2.Ml.Onnx.OnnxGraph;
using static TorchSharp.torch;

namespace BeitV2.Ml.Onnx;

/// <summary>A feature map value of a graph with its static shape (B, C, H, W); only the batch is symbolic.</summary>
public sealed record OnnxMap(string Name, long Channels, long Height, long Width);

/// <summary>
/// The convolutional layers of the segmentation model written as ONNX nodes from the state dict: convolutions with
/// an eval-mode BatchNorm folded in (mmcv's ConvModule, the fpn1 neck), max pooling, adaptive average pooling on a
/// static grid and bilinear resizing as torch's <c>F.interpolate</c>. Shapes are tracked statically (<see cref="OnnxMap"/>):
/// the segmenter's input size is fixed, so every spatial size is known at export.
/// </summary>
public static class ConvOnnxLayers
{
    /// <summary>
    /// The eval-mode BatchNorm <paramref name="key"/> as a per-channel affine map, y = x·scale + shift with
    /// scale = γ/√(var + eps), shift = β − mean·scale (computed in float64; torch's CPU kernel applies the same two
    /// per-channel factors). Folding it into the preceding convolution changes only float32 rounding.
    /// </summary>
    public static (Tensor Scale, Tensor Shift) BatchNormAffine(IReadOnlyDictionary<string, Tensor> sd, string key, double eps)
    {
        using var scope = NewDisposeScope();
        var scale = sd[$"{key}.weight"].detach().to_type(ScalarType.Float64) / (sd[$"{key}.running_var"].detach().to_type(ScalarType.Float64) + eps).sqrt();
        var shift = sd[$"{key}.bias"].detach().to_type(ScalarType.Float64) - sd[$"{key}.running_mean"].detach().to_type(ScalarType.Float64) * scale;
        return (scale.MoveToOuterDisposeScope(), shift.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// A 2-d convolution (<paramref name="transposed"/>: ConvTranspose2d, weight (in, out, k, k)) with the weights of
    /// <paramref name="convKey"/> and, when <paramref name="bn"/> is given, that BatchNorm folded into its weight and bias:
    /// W' = W·scale[o], b' = b·scale + shift.
    /// </summary>
    /// <param name="padding">the symmetric zero padding (Conv only).</param>
    /// <param name="stride">the stride (ConvTranspose: also the kernel, as the necks use it: output = stride·input).</param>
    public static OnnxMap Conv(this OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, string convKey, OnnxMap x,
        (string Key, double Eps)? bn = null, long padding = 0, bool transposed = false, long stride = 1)
    {
        using var scope = NewDisposeScope();
        var w = sd[$"{convKey}.weight"].detach().to_type(ScalarType.Float64);
        long outChannels = transposed ? w.shape[1] : w.shape[0], k = w.shape[2];
        if (w.shape[3] != k) throw new NotSupportedException($"{convKey}: only square kernels are exported.");
        var b = sd.TryGetValue($"{convKey}.bias", out var bias) ? bias.detach().to_type(ScalarType.Float64) : zeros(outChannels, ScalarType.Float64);
        var name = convKey;
        if (bn is { } norm)
        {
            var (scale, shift) = BatchNormAffine(sd, norm.Key, norm.Eps);
            w = w * (transposed ? scale.view(1, -1, 1, 1) : scale.view(-1, 1, 1, 1));
            b = b * scale + shift;
            name = $"{convKey}+{norm.Key}";
        }
        var inputs = new[] { x.Name, g.Initializer($"{name}.weight", w), g.Initializer($"{name}.bias", b) };
        if (transposed)
        {
            // ConvTranspose2d(k, stride): out = (in − 1)·stride + k.
            var y = g.Node("ConvTranspose", inputs, attrs: new[] { Ints("kernel_shape", k, k), Ints("strides", stride, stride) });
            return new OnnxMap(y, outChannels, (x.Height - 1) * stride + k, (x.Width - 1) * stride + k);
        }
        var c = g.Node("Conv", inputs, attrs: new[] { Ints("kernel_shape", k, k), Ints("strides", stride, stride), Ints("pads", padding, padding, padding, padding) });
        return new OnnxMap(c, outChannels, (x.Height + 2 * padding - k) / stride + 1, (x.Width + 2 * padding - k) / stride + 1);
    }

    /// <summary>mmcv's ConvModule <paramref name="key"/> (<c>conv</c> without bias, <c>bn</c> folded in, ReLU); "same" padding (k − 1)/2 as every ConvModule of UPerHead.</summary>
    public static OnnxMap ConvModule(this OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, string key, OnnxMap x, double bnEps)
    {
        var k = sd[$"{key}.conv.weight"].shape[2];
        var y = g.Conv(sd, $"{key}.conv", x, ($"{key}.bn", bnEps), padding: (k - 1) / 2);
        return y with { Name = g.Node("Relu", new[] { y.Name }) };
    }

    /// <summary><c>nn.MaxPool2d(k, k)</c> (floor mode): out = ⌊in / k⌋.</summary>
    public static OnnxMap MaxPool(this OnnxGraph g, OnnxMap x, long k) =>
        new(g.Node("MaxPool", new[] { x.Name }, attrs: new[] { Ints("kernel_shape", k, k), Ints("strides", k, k) }),
            x.Channels, (x.Height - k) / k + 1, (x.Width - k) / k + 1);

    /// <summary>
    /// torch's <c>adaptive_avg_pool2d(x, s)</c> on the static H×W grid (ONNX has no adaptive pooling): output bin i
    /// averages rows floor(i·H/s) … ceil((i+1)·H/s) − 1 (likewise columns), so bins may overlap or repeat a row
    /// (s &gt; H). Written as a MatMul of the flattened map with a constant 0/1 bin-membership matrix (H·W, s·s),
    /// then a division by the bin sizes: a sum and a division like the torch kernel.
    /// </summary>
    public static OnnxMap AdaptiveAvgPool(this OnnxGraph g, OnnxMap x, long s)
    {
        long h = x.Height, w = x.Width;
        var member = new float[h * w * s * s];
        var count = new float[s * s];
        for (long i = 0; i < s; i++)
        for (long j = 0; j < s; j++)
        {
            var (y0, y1) = Bin(i, h, s);
            var (x0, x1) = Bin(j, w, s);
            for (var y = y0; y < y1; y++)
            for (var xx = x0; xx < x1; xx++)
                member[(y * w + xx) * s * s + i * s + j] = 1f;
            count[i * s + j] = (y1 - y0) * (x1 - x0);
        }
        var key = $"adaptive_pool_{h}x{w}_to_{s}";
        var matrix = g.HasInitializer($"{key}.bins") ? $"{key}.bins" : g.Initializer($"{key}.bins", member, h * w, s * s);
        var sizes = g.HasInitializer($"{key}.sizes") ? $"{key}.sizes" : g.Initializer($"{key}.sizes", count, s * s);
        var flat = g.Node("Reshape", new[] { x.Name, g.Int64s($"shape_b_{x.Channels}_{h * w}", 0, x.Channels, h * w) });
        var mean = g.Node("Div", new[] { g.Node("MatMul", new[] { flat, matrix }), sizes });
        return new OnnxMap(g.Node("Reshape", new[] { mean, g.Int64s($"shape_b_{x.Channels}_{s}_{s}", 0, x.Channels, s, s) }), x.Channels, s, s);
    }

    /// <summary>The input range [start, end) of adaptive-pool bin <paramref name="i"/> of <paramref name="s"/> over <paramref name="n"/> (ATen's start_index / end_index).</summary>
    public static (long Start, long End) Bin(long i, long n, long s) => (i * n / s, ((i + 1) * n + s - 1) / s);

    /// <summary>
    /// torch's bilinear <c>F.interpolate(x, size=(h, w), align_corners=…)</c> (mmseg's <c>resize</c>) as ONNX Resize
    /// with the target sizes (the batch read from <paramref name="batch"/>, a (1,) int64 value). align_corners=True is
    /// Resize's "align_corners"; False is torch's half-pixel rule src = (dst + 0.5)·in/out − 0.5, clamped at 0, which is
    /// Resize's "half_pixel" (ORT clamps linear sampling to the input). Not "pytorch_half_pixel": that one maps an
    /// output of length 1 to source 0, while torch keeps the half-pixel formula there (6 → 1 samples 2.5, the mean of the
    /// middle two). In the segmenter a length-1 output only occurs when the PPM resizes its pooled maps back to a 1×1
    /// top level, and those maps are constant (pooled from one pixel), so either mode gives the same graph output;
    /// half_pixel keeps this writer right for any input. A same-size resize is the identity in torch (src = dst) and
    /// is not written.
    /// </summary>
    public static OnnxMap Resize(this OnnxGraph g, OnnxMap x, string batch, long height, long width, bool alignCorners)
    {
        if (x.Height == height && x.Width == width) return x;
        var sizes = g.Node("Concat", new[] { batch, g.Int64s($"resize_{x.Channels}_{height}_{width}", x.Channels, height, width) }, attrs: Int("axis", 0));
        var y = g.Node("Resize", new[] { x.Name, "", "", sizes }, attrs: new[]
        {
            String("mode", "linear"),
            String("coordinate_transformation_mode", alignCorners ? "align_corners" : "half_pixel"),
        });
        return new OnnxMap(y, x.Channels, height, width);
    }
}
