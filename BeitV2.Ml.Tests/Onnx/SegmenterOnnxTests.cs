using System.Diagnostics;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Tests.Data;
using BeitV2.Ml.Tests.Parity;
using BeitV2.TestSupport;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// The UperNet segmenter through the ONNX path (<see cref="SegmenterOnnxExporter"/>), against the TorchSharp forward of
/// the same weights (no reference fixture exists for the segmenter): random, non-trivial weights (BatchNorm running
/// statistics and affine perturbed so that the folding is exercised) on tiny configs whose grids are odd, so that the
/// adaptive-pool bins are uneven and overlapping and the top-down resizes are by non-integer factors; float outputs at
/// the strict tolerance, the class map exactly; both ORT optimisation levels.
/// </summary>
public sealed class SegmenterOnnxTests(ITestOutputHelper output)
{
    private static readonly GraphOptimizationLevel[] Levels = { GraphOptimizationLevel.ORT_ENABLE_ALL, GraphOptimizationLevel.ORT_DISABLE_ALL };

    /// <summary>Tiny configs (32 wide, 2 heads, head width 16, 5 classes), named for what they exercise.</summary>
    private static SegmentationConfig Config(string name)
    {
        var micro = SegmentationConfig.Micro(numClasses: 5) with { Channels = 16, AuxChannels = 8 };
        var b = micro.Backbone;
        return name switch
        {
            // 3×3 grid: levels 12, 6, 3, 1; the PPM pools a 1×1 map to 2×2…6×6 and resizes them back to 1×1.
            "p16-grid3" => micro with { Backbone = b with { ImgSize = 48 } },
            // 5×5 grid: levels 20, 10, 5, 2 (2 → 5: non-integer); overlapping bins (3 of 2); shared bias + absolute
            // position embedding; 5 blocks of which the last feeds nothing (pruned from the graph).
            "p16-grid5-shared-abs" => micro with
            {
                Backbone = b with { ImgSize = 80, Depth = 5, UseAbsPosEmb = true, UseRelPosBias = false, UseSharedRelPosBias = true },
                OutIndices = new[] { 0, 1, 2, 3 },
            },
            // Patch 8: levels 10, 5, 2, 1; align_corners=True resizes.
            "p8-grid5-align" => micro with { Backbone = b with { ImgSize = 40, PatchSize = 8 }, AlignCorners = true },
            // Patch 4 (the shipped model's necks): 9×9 grid, levels 9, 4, 2, 1; pool scales as mmseg's.
            "p4-grid9" => micro with { Backbone = b with { ImgSize = 36, PatchSize = 4 }, OutIndices = new[] { 0, 1, 2, 3 } },
            // Patch 4 with output stride 2: fpn1 = ConvTranspose → BatchNorm (folded) → GELU; levels 18, 9, 4, 2 (logits at 18×18).
            "p4-grid9-stride2" => micro with { Backbone = b with { ImgSize = 36, PatchSize = 4 }, OutputStride = 2 },
            _ => throw new ArgumentException(name),
        };
    }

    public static TheoryData<string, GraphOptimizationLevel> Cases()
    {
        var data = new TheoryData<string, GraphOptimizationLevel>();
        foreach (var name in new[] { "p16-grid3", "p16-grid5-shared-abs", "p8-grid5-align", "p4-grid9", "p4-grid9-stride2" })
        foreach (var level in Levels)
            data.Add(name, level);
        return data;
    }

    public static TheoryData<GraphOptimizationLevel> LevelCases()
    {
        var data = new TheoryData<GraphOptimizationLevel>();
        foreach (var level in Levels) data.Add(level);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExportedGraph_MatchesTheTorchSharpForward(string name, GraphOptimizationLevel level)
    {
        using var scope = NewDisposeScope();
        using var model = RandomModel(Config(name), seed: 17);
        var S = model.Config.Backbone.ImgSize;
        var images = randn(3, 3, S, S, generator: new Generator(5));
        var graph = Export(model, new OnnxExportOptions(Diagnostics: true));
        var got = OnnxTestRun.Run(graph, new Dictionary<string, Tensor> { [OnnxNames.Images] = images }, level);

        using (no_grad())
        {
            var features = model.Backbone.forward(images);
            for (var i = 0; i < features.Length; i++) Close(SegmenterOnnxExporter.Feature(i), features[i], got[SegmenterOnnxExporter.Feature(i)]);
            var logits = got[SegmenterOnnxExporter.SegLogits];
            var side = S / model.Config.OutputStride;
            Assert.Equal(new long[] { 3, model.Config.NumClasses, side, side }, logits.shape);
            Close(SegmenterOnnxExporter.SegLogits, model.forward(images), logits);
            var resized = model.ForwardResized(images, (S, S));
            Close(SegmenterOnnxExporter.SegLogitsResized, resized, got[SegmenterOnnxExporter.SegLogitsResized]);
            var expected = model.Predict(images, (S, S));
            Assert.True(expected.unique().output.numel() > 1, "the random model should predict more than one class");
            SameClasses(expected, got[OnnxNames.Classes], resized);
        }
    }

    [Theory]
    [MemberData(nameof(LevelCases))]
    public void EveryBatchSize_GivesEachImageItsResultAlone(GraphOptimizationLevel level)
    {
        using var scope = NewDisposeScope();
        using var model = RandomModel(Config("p16-grid5-shared-abs"), seed: 3);
        var S = model.Config.Backbone.ImgSize;
        var images = randn(4, 3, S, S, generator: new Generator(9));
        var graph = Export(model, new OnnxExportOptions(Diagnostics: true));
        var alone = Enumerable.Range(0, 4)
            .Select(i => OnnxTestRun.Run(graph, new Dictionary<string, Tensor> { [OnnxNames.Images] = images[i..(i + 1)] }, level)).ToArray();
        for (var b = 2; b <= 4; b++)
        {
            var batched = OnnxTestRun.Run(graph, new Dictionary<string, Tensor> { [OnnxNames.Images] = images[..b] }, level);
            Assert.Equal(new long[] { b, S, S }, batched[OnnxNames.Classes].shape);
            for (var i = 0; i < b; i++)
            {
                Close($"batch {b} image {i} logits", alone[i][SegmenterOnnxExporter.SegLogitsResized], batched[SegmenterOnnxExporter.SegLogitsResized][i..(i + 1)]);
                SameClasses(alone[i][OnnxNames.Classes], batched[OnnxNames.Classes][i..(i + 1)], alone[i][SegmenterOnnxExporter.SegLogitsResized]);
            }
        }
    }

    [Fact]
    public void ServedGraph_HasOnlyTheClassMapAndThePooledFeature_AndNoUnusedBlocks()
    {
        using var model = RandomModel(Config("p16-grid5-shared-abs"), seed: 1);
        var graph = Export(model, OnnxExportOptions.Serving);
        Assert.Equal([OnnxNames.Classes, OnnxNames.Mean], graph.Graph.Output.Select(x => x.Name));
        var o = graph.Graph.Output[0];
        // The pooled feature the out-of-domain score reads: (B, C).
        Assert.Equal(2, graph.Graph.Output[1].Type.TensorType.Shape.Dim.Count);
        Assert.Equal((int)global::Onnx.TensorProto.Types.DataType.Int64, o.Type.TensorType.ElemType);
        Assert.Equal(OnnxNames.BatchDim, o.Type.TensorType.Shape.Dim[0].DimParam);
        // Block 4 feeds no neck: neither its nodes' weights nor the auxiliary head's are in the graph; block 3's are.
        Assert.DoesNotContain(graph.Graph.Initializer, t => t.Name.StartsWith("backbone.blocks.4.", StringComparison.Ordinal));
        Assert.DoesNotContain(graph.Graph.Initializer, t => t.Name.StartsWith("auxiliary_head.", StringComparison.Ordinal));
        Assert.Contains(graph.Graph.Initializer, t => t.Name.StartsWith("backbone.blocks.3.", StringComparison.Ordinal));
        var used = graph.Graph.Node.SelectMany(n => n.Input).ToHashSet();
        Assert.All(graph.Graph.Initializer, t => Assert.Contains(t.Name, used));
    }

    [Fact]
    public void MaskInput_IsRefused()
    {
        using var model = RandomModel(Config("p16-grid3"), seed: 1);
        var e = Assert.Throws<NotSupportedException>(() => Export(model, new OnnxExportOptions(MaskInput: true)));
        Assert.Contains("MIM", e.Message);
    }

    /// <summary>ONNX has no adaptive pooling: the bin-matrix version against torch's kernel, on grids that give empty-free uneven, overlapping and repeated bins.</summary>
    [Theory]
    [InlineData(1, 1, 6)]
    [InlineData(2, 2, 3)]
    [InlineData(3, 5, 2)]
    [InlineData(5, 5, 3)]
    [InlineData(7, 4, 6)]
    [InlineData(14, 14, 6)]
    public void AdaptiveAveragePool_MatchesTorch(int h, int w, int s)
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3, h, w, generator: new Generator((ulong)(h * 100 + w * 10 + s))) * 3;
        var g = new OnnxGraph("pool");
        g.Input("x", new long?[] { null, 3, h, w });
        var y = g.AdaptiveAvgPool(new OnnxMap("x", 3, h, w), s);
        g.OutputAs(y.Name, "y", new long?[] { null, 3, s, s });
        var got = OnnxTestRun.Run(g.ToModel(), new Dictionary<string, Tensor> { ["x"] = x })["y"];
        Close($"pool {h}x{w}→{s}", nn.functional.adaptive_avg_pool2d(x, new long[] { s, s }), got);
    }

    /// <summary>The bilinear resize against mmseg's (F.interpolate), including a resize to length 1, where ONNX's pytorch_half_pixel would differ from torch.</summary>
    [Theory]
    [InlineData(6, 1, false)]
    [InlineData(2, 1, false)]
    [InlineData(1, 3, false)]
    [InlineData(2, 5, false)]
    [InlineData(5, 10, false)]
    [InlineData(7, 3, false)]
    [InlineData(6, 1, true)]
    [InlineData(2, 5, true)]
    [InlineData(7, 3, true)]
    public void BilinearResize_MatchesTorch(int from, int to, bool alignCorners)
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3, from, from + 1, generator: new Generator((ulong)(from * 10 + to))) * 3;
        var g = new OnnxGraph("resize");
        g.Input("x", new long?[] { null, 3, from, from + 1 });
        var batch = g.Node("Slice", new[] { g.Node("Shape", new[] { "x" }), g.Int64s("slice_0", 0), g.Int64s("slice_1", 1) });
        var y = g.Resize(new OnnxMap("x", 3, from, from + 1), batch, to, to + 2, alignCorners);
        g.OutputAs(y.Name, "y", new long?[] { null, 3, to, to + 2 });
        var got = OnnxTestRun.Run(g.ToModel(), new Dictionary<string, Tensor> { ["x"] = x })["y"];
        Close($"resize {from}→{to}", SegmentationOps.Resize(x, to, to + 2, alignCorners), got);
    }

    /// <summary>
    /// The shipped segmenter (a 6-block, 96-wide BEiT on 56 px Fashion-MNIST scenes, patch 4) exported and run on
    /// scenes of the Fashion-MNIST test split, prepared as serving prepares them (64 px canvas resized to 56, ImageNet
    /// normalisation): the class maps equal what the TorchSharp model predicts.
    /// </summary>
    [Theory]
    [MemberData(nameof(LevelCases))]
    public void ShippedSegmenter_PredictsTheSameClassMapsAsTorchSharp(GraphOptimizationLevel level)
    {
        using var scope = NewDisposeScope();
        var folder = Directory.GetDirectories(Path.Combine(FixturePaths.RepoRoot, "BeitV2.Web", "DefaultModels"), "segmenter-*").Single();
        using var package = ModelPackage.Load(folder);
        var model = package.As<BeitSegmenter>();
        model.eval();
        var S = model.Config.Backbone.ImgSize;
        var images = FashionScenes(S, count: 16, seed: 17);

        var graph = Export(model, new OnnxExportOptions(Diagnostics: true));
        var got = OnnxTestRun.Run(graph, new Dictionary<string, Tensor> { [OnnxNames.Images] = images }, level);
        using (no_grad())
        {
            Close(SegmenterOnnxExporter.SegLogits, model.forward(images), got[SegmenterOnnxExporter.SegLogits]);
            var resized = model.ForwardResized(images, (S, S));
            Close(SegmenterOnnxExporter.SegLogitsResized, resized, got[SegmenterOnnxExporter.SegLogitsResized]);
            var expected = model.Predict(images, (S, S));
            var classes = got[OnnxNames.Classes];
            var agree = expected.eq(classes).sum().item<long>();
            var foreground = expected.ne(0).sum().item<long>();
            output.WriteLine($"shipped segmenter, {level}: {agree} of {expected.numel()} pixels agree ({foreground} predicted foreground)");
            Assert.True(foreground > 0, "the scenes should show predicted clothing");
            SameClasses(expected, classes, resized);
        }
    }

    private global::Onnx.ModelProto Export(BeitSegmenter model, OnnxExportOptions options)
    {
        var entry = ModelCatalog.Default.EntryOf(model)!;
        Assert.True(entry.CanExportOnnx);
        var watch = Stopwatch.StartNew();
        var graph = entry.ExportOnnx(model, options);
        output.WriteLine($"export {watch.ElapsedMilliseconds} ms, {graph.Graph.Node.Count} nodes, {graph.Graph.Initializer.Count} initializers, " +
                         $"{graph.CalculateSize() / 1024.0:F1} KiB");
        return graph;
    }

    /// <summary>Float outputs at the strict tolerance (<see cref="TensorAssert"/>); the worst element's share of its allowance is logged.</summary>
    private void Close(string name, Tensor expected, Tensor actual)
    {
        using var scope = NewDisposeScope();
        var w = expected.detach().cpu().to_type(ScalarType.Float64);
        var g = actual.detach().cpu().to_type(ScalarType.Float64);
        if (w.shape.SequenceEqual(g.shape))
        {
            var atol = TensorAssert.StrictRtol * Math.Max(1.0, w.abs().max().item<double>());
            var share = ((g - w).abs() / (w.abs() * TensorAssert.StrictRtol + atol)).max().item<double>();
            output.WriteLine($"{name}: max |diff| {(g - w).abs().max().item<double>():g3}, {share:F3} of the strict tolerance (max |ref| {w.abs().max().item<double>():g3})");
        }
        TensorAssert.Matches(new FixtureIo(name, "output", expected.shape, "float32", false, null, null), expected, actual);
    }

    /// <summary>
    /// The class maps must be identical. Where they are not, the pixel is reported with the reference's gap between its
    /// two largest logits, so that an argmax flip on a near-tie (a gap within the strict tolerance) would be told apart
    /// from a real error; none has occurred, so none is accepted.
    /// </summary>
    private static void SameClasses(Tensor expected, Tensor actual, Tensor referenceLogits)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(expected.shape, actual.shape);
        var differ = expected.ne(actual);
        var count = differ.sum().item<long>();
        if (count == 0) return;
        var top2 = referenceLogits.topk(2, dim: 1).values;
        var gaps = (top2[.., 0] - top2[.., 1]).masked_select(differ);
        Assert.Fail($"{count} of {expected.numel()} pixels differ; the reference's top-2 logit gaps there: " +
                    string.Join(", ", gaps.data<float>().ToArray().Take(10).Select(v => v.ToString("g3"))));
    }

    /// <summary>A segmenter with every weight and BatchNorm statistic drawn at a scale that keeps activations O(1), in eval mode.</summary>
    private static BeitSegmenter RandomModel(SegmentationConfig config, int seed)
    {
        manual_seed(seed);
        var model = new BeitSegmenter(config);
        var gen = new Generator((ulong)seed);
        using (no_grad())
        {
            foreach (var (name, p) in model.named_parameters())
            {
                using var n = randn(p.shape, generator: gen);
                var leaf = name[(name.LastIndexOf('.') + 1)..];
                if (leaf is "cls_token" or "pos_embed" or "mask_token" or "relative_position_bias_table") p.copy_(n * 0.3);
                else if (leaf.StartsWith("gamma_", StringComparison.Ordinal)) p.copy_(n * 0.1 + 0.3);
                else if (p.dim() >= 2) p.copy_(n / Math.Sqrt(p.numel() / p.shape[0]));
                else if (leaf == "weight") p.copy_(n * 0.3 + 1);   // LayerNorm and BatchNorm scales
                else p.copy_(n * 0.2);                              // biases
            }
            foreach (var (name, b) in model.named_buffers())
            {
                if (name.EndsWith(".running_mean", StringComparison.Ordinal)) { using var n = randn(b.shape, generator: gen); b.copy_(n * 0.3); }
                else if (name.EndsWith(".running_var", StringComparison.Ordinal)) { using var u = rand(b.shape, generator: gen); b.copy_(u * 2.5 + 0.3); }
            }
        }
        model.eval();
        return model;
    }

    /// <summary>Fashion-MNIST scenes (test split) on the default 64 px canvas, resized to the model's input with Pillow's bicubic and ImageNet-normalised (the serving preprocessing of a full-resize model).</summary>
    private static Tensor FashionScenes(int size, int count, int seed)
    {
        var scenes = new FashionMnistSegmentationDataset(FashionMnistData.Test, new FashionMnistSegmentationOptions { Seed = seed, Count = count });
        var transform = new EvalTransform(size, normalization: PixelNormalization.ImageNet);
        var perImage = 3 * size * size;
        var data = new float[count * perImage];
        for (var i = 0; i < count; i++)
        {
            var image = scenes.Get(i).Image;
            var view = new RgbBuffer(PilResize.Resize(image.Pixels, image.Width, image.Height, 3, size, size), size, size);
            transform.WriteChw(view, data.AsSpan(i * perImage, perImage));
        }
        return tensor(data, new long[] { count, 3, size, size });
    }
}
