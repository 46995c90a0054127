using BeitV2.Ml.Models.Segmentation;
using Onnx;
using TorchSharp.Modules;
using static BeitV2.Ml.Onnx.OnnxGraph;
using static TorchSharp.torch;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// <see cref="BeitSegmenter"/> (BEiT backbone + FPN necks + UPerHead) as an ONNX graph, the eval-mode forward:
/// outputs <see cref="OnnxNames.Classes"/> (B, S, S) int64, what <c>ServedSegmenter.Segment</c> returns, and
/// <see cref="OnnxNames.Mean"/> (B, C), the backbone's pooled feature it returns beside them
/// (<see cref="BeitSegmenter.Predict(Tensor, ValueTuple{int, int})"/> at the input size: decode-head logits resized
/// bilinearly to S×S, argmax over classes, first index on ties as torch and ONNX ArgMax both take).
/// With diagnostics also <see cref="SegLogits"/> (the decode-head logits before the resize), <see cref="SegLogitsResized"/>
/// and the backbone's feature pyramid <see cref="Feature"/>(i) (the neck outputs, as <see cref="BeitSegmentationBackbone.forward"/>).
/// </summary>
/// <remarks>
/// The auxiliary FCN head is not written (training only); Dropout2d is the identity in eval mode. Every BatchNorm is
/// folded into the convolution before it with its running statistics (<see cref="ConvOnnxLayers.BatchNormAffine"/>),
/// whatever the module's train/eval mode. Blocks after the last out index are pruned (<see cref="OnnxPrune"/>).
/// </remarks>
public static class SegmenterOnnxExporter
{
    /// <summary>Diagnostics: decode-head logits (B, K, H/s, W/s) at the output stride s, before the resize.</summary>
    public const string SegLogits = "seg_logits";
    /// <summary>Diagnostics: decode-head logits resized to the input (B, K, S, S), what the argmax reads.</summary>
    public const string SegLogitsResized = "seg_logits_resized";
    /// <summary>Diagnostics: the backbone's feature map (neck output) <paramref name="i"/> (B, C, h, w).</summary>
    public static string Feature(int i) => $"features_{i}";

    public static ModelProto Export(BeitSegmenter model, OnnxExportOptions options)
    {
        if (options.MaskInput) throw new NotSupportedException("The segmenter has no [MASK] embedding: MaskInput is for MIM graphs only.");
        var c = model.Config;
        var bc = c.Backbone;
        var sd = OnnxLayers.Weights(model);
        var eps = model.named_modules().Where(m => m.module is BatchNorm2d)
            .ToDictionary(m => m.name, m => ((BatchNorm2d)m.module).eps, StringComparer.Ordinal);
        var g = options.NewGraph("beit_upernet");
        long S = bc.ImgSize;
        g.Input(OnnxNames.Images, new long?[] { null, bc.InChans, S, S });
        var batch = g.Node("Slice", new[] { g.Node("Shape", new[] { OnnxNames.Images }), g.Int64s("slice_0", 0), g.Int64s("slice_1", 1) });

        var trunk = VitTrunkOnnx.Write(g, model, model.Backbone.Trunk, "backbone.", OnnxNames.Images);
        var features = Necks(g, sd, eps, model.Backbone, trunk);
        var logits = DecodeHead(g, sd, eps, c, features, batch);
        var resized = g.Resize(logits, batch, S, S, c.AlignCorners);
        g.OutputAs(g.Node("ArgMax", new[] { resized.Name }, attrs: new[] { Int("axis", 1), Int("keepdims", 0), Int("select_last_index", 0) }),
            OnnxNames.Classes, new long?[] { null, S, S }, TensorProto.Types.DataType.Int64);
        // The pooled feature of the out-of-domain score: the deepest selected block's patch tokens averaged, as
        // BeitSegmentationBackbone.ForwardWithPooled takes it.
        g.OutputAs(g.MeanOverTokens(g.PatchTokens(trunk.Hidden[model.Backbone.OutIndices[^1]])), OnnxNames.Mean, new long?[] { null, bc.EmbedDim });
        if (options.Diagnostics)
        {
            g.OutputAs(logits.Name, SegLogits, Dims(logits));
            g.OutputAs(resized.Name, SegLogitsResized, Dims(resized));
            for (var i = 0; i < features.Count; i++) g.OutputAs(features[i].Name, Feature(i), Dims(features[i]));
        }
        var proto = g.ToModel($"BEiT v2 UperNet segmenter ({S}px, {bc.Depth} blocks, {bc.EmbedDim} wide, {c.NumClasses} classes)");
        OnnxPrune.Unused(proto);
        return proto;
    }

    private static long?[] Dims(OnnxMap x) => new long?[] { null, x.Channels, x.Height, x.Width };

    /// <summary>
    /// The selected blocks' patch tokens as (B, C, g, g) maps (x[:, 1:] → (B, C, N) → grid), then fpn1..fpn4 as
    /// <see cref="BeitSegmentationBackbone"/> builds them for the patch size (16: ConvT-BN-GELU-ConvT, ConvT, identity,
    /// MaxPool 2; 8: ConvT, identity, MaxPool 2, 4; 4: identity, MaxPool 2, 4, 8; 4 with output stride 2: ConvT-BN-GELU,
    /// identity, MaxPool 2, 4).
    /// </summary>
    private static List<OnnxMap> Necks(OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, IReadOnlyDictionary<string, double> eps,
        BeitSegmentationBackbone backbone, TrunkGraph trunk)
    {
        long C = backbone.Config.EmbedDim, grid = backbone.GridSize;
        var features = new List<OnnxMap>();
        for (var i = 0; i < backbone.OutIndices.Count; i++)
        {
            var tokens = g.Node("Transpose", new[] { g.PatchTokens(trunk.Hidden[backbone.OutIndices[i]]) }, attrs: Ints("perm", 0, 2, 1));
            var map = new OnnxMap(g.Node("Reshape", new[] { tokens, g.Int64s($"shape_b_{C}_{grid}_{grid}", 0, C, grid, grid) }), C, grid, grid);
            var key = $"backbone.fpn{i + 1}";
            // (patch size, output stride, neck): output stride 2 exists for 4 px patches only (SegmentationConfig.Validate).
            features.Add((backbone.Config.PatchSize, backbone.OutputStride, i) switch
            {
                (16, _, 0) => FirstNeck16(g, sd, eps, key, map),
                (4, 2, 0) => Upsample(g, sd, eps, key, map),
                (16, _, 1) or (8, _, 0) => g.Conv(sd, $"{key}.0", map, transposed: true, stride: 2),
                (16, _, 2) or (8, _, 1) or (4, 4, 0) or (4, 2, 1) => map,
                (16, _, 3) or (8, _, 2) or (4, 4, 1) or (4, 2, 2) => g.MaxPool(map, 2),
                (8, _, 3) or (4, 4, 2) or (4, 2, 3) => g.MaxPool(map, 4),
                (4, 4, 3) => g.MaxPool(map, 8),
                _ => throw new NotSupportedException($"No neck {i + 1} for patch size {backbone.Config.PatchSize}, output stride {backbone.OutputStride}."),
            });
        }
        return features;
    }

    /// <summary>fpn1 at patch 16: ConvTranspose(2, 2) → BatchNorm (folded) → exact GELU → ConvTranspose(2, 2).</summary>
    private static OnnxMap FirstNeck16(OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, IReadOnlyDictionary<string, double> eps, string key, OnnxMap x) =>
        g.Conv(sd, $"{key}.3", Upsample(g, sd, eps, key, x), transposed: true, stride: 2);

    /// <summary>ConvTranspose(2, 2) <c>{key}.0</c> → BatchNorm <c>{key}.1</c> (folded) → exact GELU: fpn1 at patch 4 with output stride 2, and the first half of fpn1 at patch 16.</summary>
    private static OnnxMap Upsample(OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, IReadOnlyDictionary<string, double> eps, string key, OnnxMap x)
    {
        var y = g.Conv(sd, $"{key}.0", x, ($"{key}.1", eps[$"{key}.1"]), transposed: true, stride: 2);
        return y with { Name = g.Gelu(y.Name) };
    }

    /// <summary>
    /// <see cref="UperHead.forward"/>: lateral 1×1 ConvModules and the PPM on the coarsest level, the top-down sum with
    /// bilinear resizes, 3×3 fpn ConvModules, every level resized to the finest, concatenated, fpn_bottleneck, conv_seg.
    /// </summary>
    private static OnnxMap DecodeHead(OnnxGraph g, IReadOnlyDictionary<string, Tensor> sd, IReadOnlyDictionary<string, double> eps,
        SegmentationConfig c, List<OnnxMap> inputs, string batch)
    {
        const string head = "decode_head";
        var levels = inputs.Count;
        OnnxMap Cm(string key, OnnxMap x) => g.ConvModule(sd, $"{head}.{key}", x, eps[$"{head}.{key}.bn"]);

        var laterals = new List<OnnxMap>();
        for (var i = 0; i < levels - 1; i++) laterals.Add(Cm($"lateral_convs.{i}", inputs[i]));
        laterals.Add(Ppm(g, c, inputs[^1], batch, Cm));

        for (var i = levels - 1; i > 0; i--)
        {
            var up = g.Resize(laterals[i], batch, laterals[i - 1].Height, laterals[i - 1].Width, c.AlignCorners);
            laterals[i - 1] = laterals[i - 1] with { Name = g.Node("Add", new[] { laterals[i - 1].Name, up.Name }) };
        }

        var outs = new List<OnnxMap>();
        for (var i = 0; i < levels - 1; i++) outs.Add(Cm($"fpn_convs.{i}", laterals[i]));
        outs.Add(laterals[^1]);
        for (var i = levels - 1; i > 0; i--) outs[i] = g.Resize(outs[i], batch, outs[0].Height, outs[0].Width, c.AlignCorners);

        var fused = Concat(g, outs);
        return g.Conv(sd, $"{head}.conv_seg", Cm("fpn_bottleneck", fused));
    }

    /// <summary>The pyramid pooling module: x and, per pool scale, adaptive average pool → 1×1 ConvModule → resize back, concatenated, then the 3×3 bottleneck.</summary>
    private static OnnxMap Ppm(OnnxGraph g, SegmentationConfig c, OnnxMap x, string batch, Func<string, OnnxMap, OnnxMap> cm)
    {
        var outs = new List<OnnxMap> { x };
        for (var j = 0; j < c.PoolScales.Count; j++)
        {
            var pooled = g.AdaptiveAvgPool(x, c.PoolScales[j]);
            outs.Add(g.Resize(cm($"psp_modules.{j}.1", pooled), batch, x.Height, x.Width, c.AlignCorners));
        }
        return cm("bottleneck", Concat(g, outs));
    }

    private static OnnxMap Concat(OnnxGraph g, List<OnnxMap> maps) =>
        new(g.Node("Concat", maps.Select(m => m.Name).ToArray(), attrs: Int("axis", 1)), maps.Sum(m => m.Channels), maps[0].Height, maps[0].Width);
}
