using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Segmentation;

/// <summary>The UperNet + BEiT segmenter: shapes, official key names, prediction, loss, training, BatchNorm.</summary>
public sealed class SegmenterModelTests
{
    private static Tensor Images(int batch, int size, int seed = 1)
    {
        using var g = new Generator((ulong)seed);
        return randn(new long[] { batch, 3, size, size }, generator: g);
    }

    private static Tensor Labels(int batch, int size, int classes, int seed = 2)
    {
        using var g = new Generator((ulong)seed);
        var labels = randint(0, classes, new long[] { batch, size, size }, generator: g);
        labels[.., ..4, ..] = tensor(255L); // a band of unlabelled pixels
        return labels;
    }

    [Fact]
    public void OutputsHaveTheReferenceShapes()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        model.eval();
        var images = Images(2, 64);
        using var _ = no_grad();

        var pyramid = model.Backbone.forward(images);
        Assert.Equal(new[] { new long[] { 2, 32, 16, 16 }, new long[] { 2, 32, 8, 8 }, new long[] { 2, 32, 4, 4 }, new long[] { 2, 32, 2, 2 } },
            pyramid.Select(t => t.shape));
        var maps = model.Backbone.ForwardFeatureMaps(images);
        Assert.All(maps, m => Assert.Equal(new long[] { 2, 32, 4, 4 }, m.shape));

        Assert.Equal(new long[] { 2, 5, 16, 16 }, model.forward(images).shape);
        using var train = model.ForwardTrain(images);
        Assert.Equal(new long[] { 2, 5, 16, 16 }, train.Decode.shape);
        Assert.Equal(new long[] { 2, 5, 4, 4 }, train.Auxiliary!.shape);
    }

    [Fact]
    public void PatchSize8UsesTheReferencePatch8Necks()
    {
        using var scope = NewDisposeScope();
        var config = SegmentationConfig.Micro(numClasses: 3) with
        {
            Backbone = SegmentationConfig.Micro().Backbone with { ImgSize = 32, PatchSize = 8 },
        };
        using var model = new BeitSegmenter(config);
        model.eval();
        using var _ = no_grad();
        var pyramid = model.Backbone.forward(Images(1, 32));
        // fpn1 = ConvTranspose (×2), fpn2 = identity, fpn3 = MaxPool 2, fpn4 = MaxPool 4 on a 4×4 grid.
        Assert.Equal(new long[] { 8, 4, 2, 1 }, pyramid.Select(t => t.shape[2]));
        Assert.Equal(new long[] { 1, 3, 8, 8 }, model.forward(Images(1, 32)).shape);
        var necks = model.state_dict().Keys.Where(k => k.StartsWith("backbone.fpn", StringComparison.Ordinal)).Order();
        Assert.Equal(new[] { "backbone.fpn1.0.bias", "backbone.fpn1.0.weight" }, necks);
    }

    [Fact]
    public void PatchSize4_HasParameterFreeNecksWithStrides4To32_AndItsStateDictIsInferredBack()
    {
        using var scope = NewDisposeScope();
        var config = SegmentationConfig.Micro(numClasses: 3) with
        {
            Backbone = SegmentationConfig.Micro().Backbone with { ImgSize = 64, PatchSize = 4 },
        };
        using var model = new BeitSegmenter(config);
        model.eval();
        using var _ = no_grad();
        var images = Images(1, 64);
        var pyramid = model.Backbone.forward(images);
        // A 16×16 grid: fpn1 = identity (stride 4), fpn2..fpn4 = MaxPool 2, 4, 8 (strides 8, 16, 32).
        Assert.Equal(new long[] { 16, 8, 4, 2 }, pyramid.Select(t => t.shape[2]));
        Assert.Equal(new long[] { 1, 3, 16, 16 }, model.forward(images).shape);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith("backbone.fpn", StringComparison.Ordinal));

        var inferred = BeitV2.Ml.Checkpoints.ArchitectureDeduction.Deduce(model.state_dict());
        var back = Assert.IsType<SegmentationConfig>(inferred.Config);
        Assert.Equal(4, back.Backbone!.PatchSize);
        Assert.Contains(inferred.Notes, n => n.Contains("4 px patches"));

        var tooSmall = Assert.Throws<ArgumentException>(() => new BeitSegmenter(config with { Backbone = config.Backbone! with { ImgSize = 28 } }));
        Assert.Contains("at least 32 px", tooSmall.Message);
    }

    /// <summary>
    /// Output stride 2 (4 px patches): fpn1 upsamples the grid 2× (ConvTranspose → BatchNorm → GELU, named fpn1.0 / fpn1.1 as
    /// the reference's patch-16 fpn1), so a 56 px image (14×14 grid) gives levels 28, 14, 7, 3 and 28×28 logits; the
    /// layout is deduced back from the weights, and other patch sizes refuse it.
    /// </summary>
    [Fact]
    public void OutputStride2_UpsamplesTheFinestLevel_ToA28GridAt56Px_AndIsDeducedBack()
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        var config = SegmentationConfig.Micro(numClasses: 3) with
        {
            Backbone = SegmentationConfig.Micro().Backbone with { ImgSize = 56, PatchSize = 4 }, OutputStride = 2,
        };
        using var model = new BeitSegmenter(config);
        Assert.Equal(2, model.Backbone.OutputStride);
        model.train();
        using (no_grad()) model.forward(Images(2, 56)).Dispose(); // BatchNorm statistics of the upsampling neck move
        model.eval();
        using var _ = no_grad();
        var images = Images(2, 56);
        var pyramid = model.Backbone.forward(images);
        Assert.Equal(new long[] { 28, 14, 7, 3 }, pyramid.Select(t => t.shape[2]));
        Assert.Equal(new long[] { 2, 3, 28, 28 }, model.forward(images).shape);
        using (var train = model.ForwardTrain(images))
        {
            Assert.Equal(new long[] { 2, 3, 28, 28 }, train.Decode.shape);
            Assert.Equal(new long[] { 2, 3, 7, 7 }, train.Auxiliary!.shape); // aux_in_index 2: fpn3, stride 8
        }
        Assert.Equal(new long[] { 2, 56, 56 }, model.Predict(images).shape);

        // fpn1 by hand: deconvolution, eval-mode BatchNorm, exact GELU on the 14×14 patch map of the first out index.
        var sd = model.state_dict();
        var maps = model.Backbone.ForwardFeatureMaps(images);
        var up = nn.functional.conv_transpose2d(maps[0], sd["backbone.fpn1.0.weight"], sd["backbone.fpn1.0.bias"], strides: new long[] { 2, 2 });
        var bn = (up - sd["backbone.fpn1.1.running_mean"].view(1, -1, 1, 1)) / (sd["backbone.fpn1.1.running_var"].view(1, -1, 1, 1) + 1e-5).sqrt()
                 * sd["backbone.fpn1.1.weight"].view(1, -1, 1, 1) + sd["backbone.fpn1.1.bias"].view(1, -1, 1, 1);
        Assert.True(nn.functional.gelu(bn).allclose(pyramid[0], rtol: 1e-4, atol: 1e-5), "fpn1 is not ConvTranspose → BatchNorm → GELU");
        // The other levels: identity, MaxPool 2, MaxPool 4 (the patch-8 layout).
        Assert.True(pyramid[1].Equals(maps[1]));
        Assert.True(pyramid[2].Equals(nn.functional.max_pool2d(maps[2], 2, 2)));
        Assert.True(pyramid[3].Equals(nn.functional.max_pool2d(maps[3], 4, 4)));

        var necks = sd.Keys.Where(k => k.StartsWith("backbone.fpn", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(new[]
        {
            "backbone.fpn1.0.bias", "backbone.fpn1.0.weight", "backbone.fpn1.1.bias", "backbone.fpn1.1.num_batches_tracked",
            "backbone.fpn1.1.running_mean", "backbone.fpn1.1.running_var", "backbone.fpn1.1.weight",
        }, necks);

        var inferred = BeitV2.Ml.Checkpoints.ArchitectureDeduction.Deduce(sd);
        var back = Assert.IsType<SegmentationConfig>(inferred.Config);
        Assert.Equal(2, back.OutputStride);
        Assert.Contains(inferred.Notes, n => n.StartsWith("output_stride = 2", StringComparison.Ordinal));
        using (var stride4 = new BeitSegmenter(config with { OutputStride = 4 }))
            Assert.Equal(4, Assert.IsType<SegmentationConfig>(BeitV2.Ml.Checkpoints.ArchitectureDeduction.Deduce(stride4.state_dict()).Config).OutputStride);

        var patch8 = Assert.Throws<ArgumentException>(() => new BeitSegmenter(config with { Backbone = config.Backbone with { PatchSize = 8 } }));
        Assert.Contains("output_stride 2", patch8.Message);
        Assert.Throws<ArgumentException>(() => new BeitSegmenter(config with { OutputStride = 3 }));
        // The coarsest level has stride 16 here, so 16 px images are the smallest.
        using (var small = new BeitSegmenter(config with { Backbone = config.Backbone with { ImgSize = 16 } })) Assert.Equal(2, small.Config.OutputStride);
        Assert.Contains("at least 16 px", Assert.Throws<ArgumentException>(() =>
            new BeitSegmenter(config with { Backbone = config.Backbone with { ImgSize = 12 } })).Message);
    }

    /// <summary>output_stride is written only when it is not the reference's 4 (so older configs keep their JSON) and reads back either way.</summary>
    [Fact]
    public void OutputStride_IsInTheJsonOnlyWhenNotTheDefault()
    {
        var stride4 = SegmentationConfig.Micro() with { Backbone = SegmentationConfig.Micro().Backbone with { PatchSize = 4 } };
        var stride2 = stride4 with { OutputStride = 2 };
        Assert.DoesNotContain("output_stride", JsonSerializer.Serialize(stride4, ModelJson.Options));
        var json = JsonSerializer.Serialize(stride2, ModelJson.Options);
        Assert.Contains("\"output_stride\": 2", json);
        Assert.Equal(stride2, JsonSerializer.Deserialize<SegmentationConfig>(json, ModelJson.Options));
        Assert.NotEqual(stride4, stride2);
        var explicit4 = JsonSerializer.Deserialize<SegmentationConfig>(JsonSerializer.Serialize(stride4, ModelJson.Options).TrimEnd().TrimEnd('}') + ", \"output_stride\": 4}",
            ModelJson.Options)!;
        Assert.Equal(stride4, explicit4);
    }

    /// <summary>The key list derived from beit.py and mmseg 0.11 naming (ConvModule = conv + bn; psp branch index 1).</summary>
    [Fact]
    public void StateDictKeysAreTheOfficialMmsegNames()
    {
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        var expected = new List<string> { "backbone.cls_token", "backbone.patch_embed.proj.weight", "backbone.patch_embed.proj.bias" };
        for (var i = 0; i < 4; i++)
            foreach (var p in new[]
                     {
                         "gamma_1", "gamma_2", "norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias",
                         "attn.relative_position_bias_table", "attn.qkv.weight", "attn.proj.weight", "attn.proj.bias",
                         "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
                     })
                expected.Add($"backbone.blocks.{i}.{p}");
        string[] Bn(string m) => new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }.Select(s => $"{m}.{s}").ToArray();
        string[] Cm(string m) => Bn(m + ".bn").Prepend(m + ".conv.weight").ToArray();
        expected.AddRange(new[] { "backbone.fpn1.0.weight", "backbone.fpn1.0.bias", "backbone.fpn1.3.weight", "backbone.fpn1.3.bias",
            "backbone.fpn2.0.weight", "backbone.fpn2.0.bias" });
        expected.AddRange(Bn("backbone.fpn1.1"));
        for (var i = 0; i < 4; i++) expected.AddRange(Cm($"decode_head.psp_modules.{i}.1"));
        expected.AddRange(Cm("decode_head.bottleneck"));
        for (var i = 0; i < 3; i++)
        {
            expected.AddRange(Cm($"decode_head.lateral_convs.{i}"));
            expected.AddRange(Cm($"decode_head.fpn_convs.{i}"));
        }
        expected.AddRange(Cm("decode_head.fpn_bottleneck"));
        expected.AddRange(new[] { "decode_head.conv_seg.weight", "decode_head.conv_seg.bias" });
        expected.AddRange(Cm("auxiliary_head.convs.0"));
        expected.AddRange(new[] { "auxiliary_head.conv_seg.weight", "auxiliary_head.conv_seg.bias" });

        var sd = model.state_dict();
        Assert.Equal(expected.Order(StringComparer.Ordinal), sd.Keys.Order(StringComparer.Ordinal));

        // Shapes of the head parameters: C = 32, channels = 32, aux 16, 5 classes, 4 pool scales, table (7·7+3, 2).
        void Shape(string key, params long[] shape) => Assert.True(sd[key].shape.SequenceEqual(shape), $"{key}: [{string.Join(",", sd[key].shape)}]");
        Shape("backbone.blocks.0.attn.relative_position_bias_table", 52, 2);
        Shape("backbone.fpn1.0.weight", 32, 32, 2, 2);
        Shape("backbone.fpn2.0.weight", 32, 32, 2, 2);
        Shape("decode_head.psp_modules.3.1.conv.weight", 32, 32, 1, 1);
        Shape("decode_head.bottleneck.conv.weight", 32, 32 + 4 * 32, 3, 3);
        Shape("decode_head.lateral_convs.0.conv.weight", 32, 32, 1, 1);
        Shape("decode_head.fpn_convs.0.conv.weight", 32, 32, 3, 3);
        Shape("decode_head.fpn_bottleneck.conv.weight", 32, 4 * 32, 3, 3);
        Shape("decode_head.conv_seg.weight", 5, 32, 1, 1);
        Shape("auxiliary_head.convs.0.conv.weight", 16, 32, 3, 3);
        Shape("auxiliary_head.conv_seg.weight", 5, 16, 1, 1);
        Assert.Equal(ScalarType.Int64, sd["decode_head.bottleneck.bn.num_batches_tracked"].dtype);

        using var noAux = new BeitSegmenter(SegmentationConfig.Micro() with { UseAuxHead = false });
        Assert.DoesNotContain(noAux.state_dict().Keys, k => k.StartsWith("auxiliary_head.", StringComparison.Ordinal));
    }

    [Fact]
    public void OtherInputSizesAreRefusedWithAClearMessage()
    {
        using var model = new BeitSegmenter(SegmentationConfig.Micro());
        using var images = Images(1, 96);
        var e = Assert.Throws<ArgumentException>(() => model.forward(images));
        Assert.Contains("64x64", e.Message);
        Assert.Contains("Sliding-window", e.Message);
    }

    [Fact]
    public void PredictResizesTheDecodeLogitsToAnySizeAndTakesTheArgmax()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        model.eval();
        var images = Images(2, 64);

        var mask = model.Predict(images, (37, 53));
        Assert.Equal(new long[] { 2, 37, 53 }, mask.shape);
        Assert.Equal(ScalarType.Int64, mask.dtype);
        Assert.True(mask.ge(0).all().item<bool>() && mask.lt(5).all().item<bool>());

        using (no_grad())
        {
            var logits = model.forward(images);
            var expected = nn.functional.interpolate(logits, new long[] { 37, 53 }, mode: InterpolationMode.Bilinear, align_corners: false).argmax(1);
            Assert.True(expected.Equals(mask));
        }
        Assert.Equal(new long[] { 2, 64, 64 }, model.Predict(images).shape);
        Assert.Throws<ArgumentException>(() => model.Predict(images, (0, 10)));
    }

    [Fact]
    public void LossIsMmsegCrossEntropyOnUpsampledLogitsWithIgnoredPixelsInTheDenominator()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var config = SegmentationConfig.Micro(numClasses: 5);
        using var model = new BeitSegmenter(config);
        model.eval(); // deterministic: no dropout, BatchNorm running statistics
        var images = Images(2, 64);
        var labels = Labels(2, 64, 5);

        using var loss = model.Loss(images, labels.unsqueeze(1).to(ScalarType.Int32));
        using var output = model.ForwardTrain(images);
        Tensor Manual(Tensor logits)
        {
            var up = nn.functional.interpolate(logits, new long[] { 64, 64 }, mode: InterpolationMode.Bilinear, align_corners: false);
            var perPixel = nn.functional.cross_entropy(up, labels, ignore_index: 255, reduction: nn.Reduction.None);
            return perPixel.sum() / labels.numel(); // ignored pixels count in the denominator (mmseg 0.11)
        }
        var decode = Manual(output.Decode);
        var aux = Manual(output.Auxiliary!) * 0.4;
        Assert.Equal(decode.item<float>(), loss.Decode.item<float>(), 5);
        Assert.Equal(aux.item<float>(), loss.Auxiliary!.item<float>(), 5);
        Assert.Equal((decode + aux).item<float>(), loss.Total.item<float>(), 5);
        // … which is not torch's mean over labelled pixels.
        var torchMean = nn.functional.cross_entropy(
            nn.functional.interpolate(output.Decode, new long[] { 64, 64 }, mode: InterpolationMode.Bilinear, align_corners: false),
            labels, ignore_index: 255);
        Assert.NotEqual(torchMean.item<float>(), loss.Decode.item<float>(), 3);

        using var allIgnored = model.Loss(images, full(new long[] { 2, 64, 64 }, 255L));
        Assert.Equal(0f, allIgnored.Total.item<float>());

        var bad = labels.clone();
        bad[0, 10, 10] = tensor(7L);
        Assert.Contains("7", Assert.Throws<ArgumentException>(() => model.Loss(images, bad)).Message);
        Assert.Throws<ArgumentException>(() => model.Loss(images, labels.to(ScalarType.Float32)));
    }

    /// <summary>
    /// Class-weighted cross entropy as mmseg's class_weight: each pixel's CE times its label's weight, averaged over every
    /// pixel (ignored ones count, with 0) — worked by hand on four pixels.
    /// </summary>
    [Fact]
    public void WeightedCrossEntropy_IsTheMmsegWeightedMeanOverAllPixels()
    {
        using var scope = NewDisposeScope();
        // (1, 3 classes, 1, 4): pixels with labels 0, 1, 2 and 255 (ignored).
        var logits = tensor(new float[] { 2, 0, 1, 5, /* class 1 */ 0, 1, 1, 5, /* class 2 */ 0, 0, 1, 5 }, new long[] { 1, 3, 1, 4 });
        var labels = tensor(new long[] { 0, 1, 2, 255 }, new long[] { 1, 1, 4 });
        var weights = tensor(new float[] { 0.25f, 1f, 2f });

        // ce = log Σ exp(z) − z_label per pixel.
        var ce0 = Math.Log(Math.Exp(2) + 2) - 2;            // logits (2, 0, 0), label 0
        var ce1 = Math.Log(2 + Math.E) - 1;                 // logits (0, 1, 0), label 1
        var ce2 = Math.Log(3 * Math.E) - 1;                 // logits (1, 1, 1), label 2: log 3
        var expected = (0.25 * ce0 + 1 * ce1 + 2 * ce2 + 0) / 4;
        Assert.Equal(expected, SegmentationOps.CrossEntropy(logits, labels, 255, weights).item<float>(), 5);
        Assert.Equal((ce0 + ce1 + ce2) / 4, SegmentationOps.CrossEntropy(logits, labels, 255).item<float>(), 5);
        // Not torch's weighted mean (Σ w·ce / Σ w over the labelled pixels).
        Assert.NotEqual((0.25 * ce0 + ce1 + 2 * ce2) / 3.25, SegmentationOps.CrossEntropy(logits, labels, 255, weights).item<float>(), 3);
        // Weights of 1 are the unweighted loss; a weight count other than the classes' is refused.
        Assert.Equal(SegmentationOps.CrossEntropy(logits, labels, 255).item<float>(),
            SegmentationOps.CrossEntropy(logits, labels, 255, ones(3)).item<float>(), 6);
        Assert.Throws<ArgumentException>(() => SegmentationOps.CrossEntropy(logits, labels, 255, ones(4)));
        Assert.Equal(new[] { 0.25f, 1f, 2f }, weights.data<float>().ToArray()); // the caller's tensor is left alone
    }

    [Fact]
    public void LossWithClassWeights_WeightsBothHeads()
    {
        using var scope = NewDisposeScope();
        manual_seed(15);
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        model.eval();
        var images = Images(2, 64);
        var labels = Labels(2, 64, 5);
        var weights = tensor(new float[] { 0.25f, 1, 1, 3, 1 });

        using var loss = model.Loss(images, labels, weights);
        using var output = model.ForwardTrain(images);
        double Manual(Tensor logits)
        {
            var up = nn.functional.interpolate(logits, new long[] { 64, 64 }, mode: InterpolationMode.Bilinear, align_corners: false);
            var perPixel = nn.functional.cross_entropy(up, labels, ignore_index: 255, reduction: nn.Reduction.None);
            var w = weights.index_select(0, labels.clamp(0, 4).flatten()).view(labels.shape) * labels.ne(255);
            return ((perPixel * w).sum() / labels.numel()).item<float>();
        }
        Assert.Equal(Manual(output.Decode), loss.Decode.item<float>(), 5);
        Assert.Equal(0.4 * Manual(output.Auxiliary!), loss.Auxiliary!.item<float>(), 5);
        using var unweighted = model.Loss(images, labels);
        Assert.NotEqual(unweighted.Decode.item<float>(), loss.Decode.item<float>(), 3);
        Assert.NotEqual(unweighted.Auxiliary!.item<float>(), loss.Auxiliary.item<float>(), 3);
    }

    [Fact]
    public void AGradientStepChangesEveryTrainableParameter()
    {
        using var scope = NewDisposeScope();
        manual_seed(6);
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        model.train();
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        var optimizer = optim.AdamW(model.parameters(), lr: 1e-3, weight_decay: 0);

        using (var loss = model.Loss(Images(2, 64), Labels(2, 64, 5)))
        {
            Assert.True(float.IsFinite(loss.Total.item<float>()));
            loss.Total.backward();
        }
        optimizer.step();

        var unchanged = model.named_parameters()
            .Where(p => p.parameter.requires_grad && p.parameter.Equals(before[p.name]))
            .Select(p => p.name).ToList();
        Assert.True(unchanged.Count == 0, "unchanged after one step: " + string.Join(", ", unchanged));
        Assert.True(model.named_parameters().Count() > 100);
    }

    [Fact]
    public void BatchNormInEvalUsesRunningStatisticsSoAnImageDoesNotDependOnItsBatch()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        using var model = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5) with { DropoutRatio = 0 });
        var images = Images(2, 64);
        // Non-trivial running statistics.
        model.train();
        using (no_grad()) model.forward(Images(4, 64, seed: 9)).Dispose();
        var bn = model.DecodeHead.modules().OfType<TorchSharp.Modules.BatchNorm2d>().First();
        Assert.Equal(1L, bn.num_batches_tracked!.item<long>());

        model.eval();
        using (no_grad())
        {
            var pair = model.forward(images);
            var single = model.forward(images[..1]);
            Assert.True(pair[..1].allclose(single, rtol: 1e-5, atol: 1e-5), "eval output of image 0 depends on the other image");
        }

        model.train(); // batch statistics: the same image gives another output in another batch
        using (no_grad())
        {
            var pair = model.forward(images);
            var other = model.forward(cat(new[] { images[..1], Images(1, 64, seed: 11) }, 0));
            Assert.False(pair[..1].allclose(other[..1], rtol: 1e-3, atol: 1e-3));
        }
    }

    /// <summary>
    /// From-scratch init follows the reference recipes (beit.py init_weights, mmcv ConvModule,
    /// mmseg conv_seg). Guards against TorchSharp 0.107's nn.init.trunc_normal_, which fills a
    /// tensor with a constant.
    /// </summary>
    [Fact]
    public void FreshWeightsFollowTheReferenceInitialisation()
    {
        using var scope = NewDisposeScope();
        manual_seed(10);
        using var model = new BeitSegmenter(SegmentationConfig.Base(numClasses: 150) with
        {
            Backbone = SegmentationConfig.BaseBackbone() with { ImgSize = 64, Depth = 4 }, OutIndices = new[] { 0, 1, 2, 3 },
        });
        var sd = model.state_dict();
        double Std(string key) => sd[key].to(ScalarType.Float64).std().item<double>();
        double MaxAbs(string key) => sd[key].abs().max().item<float>();

        Assert.InRange(Std("backbone.blocks.0.attn.qkv.weight"), 0.0195, 0.0205);         // trunc_normal(0.02)
        Assert.InRange(Std("backbone.blocks.3.mlp.fc2.weight"), 0.0195, 0.0205);          // no fix_init_weight rescale
        Assert.InRange(Std("backbone.cls_token"), 0.012, 0.028);
        Assert.Equal(0f, sd["backbone.blocks.0.attn.proj.bias"].abs().max().item<float>());
        Assert.Equal(0f, sd["backbone.blocks.0.attn.relative_position_bias_table"].abs().max().item<float>());
        Assert.Equal(0.1f, sd["backbone.blocks.0.gamma_1"].mean().item<float>(), 6);
        Assert.InRange(Std("decode_head.fpn_bottleneck.conv.weight"), 0.95 * Math.Sqrt(2.0 / (768 * 9)), 1.05 * Math.Sqrt(2.0 / (768 * 9))); // kaiming fan_out
        Assert.InRange(Std("decode_head.conv_seg.weight"), 0.0095, 0.0105);               // normal(0, 0.01)
        Assert.Equal(0f, sd["decode_head.conv_seg.bias"].abs().max().item<float>());
        Assert.Equal(1f, sd["decode_head.bottleneck.bn.weight"].min().item<float>());
        Assert.True(MaxAbs("backbone.fpn1.0.weight") <= 1 / Math.Sqrt(768 * 4) + 1e-6);  // ConvTranspose2d default (fan_in = out·k·k)
    }

    [Fact]
    public void ConfigRoundTripsThroughSnakeCaseJsonAndValidates()
    {
        var config = SegmentationConfig.Large(numClasses: 21);
        var json = JsonSerializer.Serialize(config, ModelJson.Options);
        Assert.Contains("\"out_indices\"", json);
        Assert.Contains("\"pool_scales\"", json);
        Assert.Contains("\"aux_in_index\"", json);
        Assert.Contains("\"img_size\": 512", json);
        var back = JsonSerializer.Deserialize<SegmentationConfig>(json, ModelJson.Options)!;
        Assert.Equal(config, back);
        Assert.Equal(new[] { 7, 11, 15, 23 }, back.OutIndices);
        Assert.Equal(1024, back.Channels);

        var b = SegmentationConfig.Base();
        Assert.Equal((512, 16, 768, 12, 150, 768, 256, 2), (b.Backbone.ImgSize, b.Backbone.PatchSize, b.Backbone.EmbedDim, b.Backbone.Depth,
            b.NumClasses, b.Channels, b.AuxChannels, b.AuxInIndex));
        Assert.Equal(new[] { 3, 5, 7, 11 }, b.OutIndices);
        Assert.Equal(new[] { 1, 2, 3, 6 }, b.PoolScales);
        Assert.True(b.Backbone.UseRelPosBias && !b.Backbone.UseAbsPosEmb && b.Backbone.QkvBias);

        var micro = SegmentationConfig.Micro();
        Assert.Throws<ArgumentException>(() => (micro with { OutIndices = new[] { 0, 1, 1, 3 } }).Validate());
        Assert.Throws<ArgumentException>(() => (micro with { OutIndices = new[] { 0, 1, 2 } }).Validate());
        Assert.Throws<ArgumentException>(() => (micro with { OutIndices = new[] { 0, 1, 2, 4 } }).Validate());
        Assert.Throws<ArgumentException>(() => (micro with { Backbone = micro.Backbone with { PatchSize = 32 } }).Validate());
        Assert.Throws<ArgumentException>(() => (micro with { AuxInIndex = 4 }).Validate());
        Assert.Throws<InvalidDataException>(() => ModelJson.Deserialize<SegmentationConfig>(
            JsonDocument.Parse("{\"num_classes\": 3, \"unknown_flag\": true}").RootElement, "segmenter"));
    }
}
