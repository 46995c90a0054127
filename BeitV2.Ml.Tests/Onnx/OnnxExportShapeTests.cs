using BeitV2.Ml.Catalog;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// The exported graphs beyond the fixtures' one shape: a symbolic batch (one session, every batch size 1..5 gives each
/// image its batch-1 result) and patch grids that are odd or not powers of two, with and without absolute position
/// embedding, per-block or shared relative position bias and mean pooling; always against our TorchSharp forward
/// (the served results where the graph serves, the model's own intermediates for diagnostics) at the strict rule
/// (1e-5·max(1, max|ref|) + 1e-5·|ref|), token ids exactly. Weights are redrawn from a seeded generator, not the
/// constructors' init, whose zero biases and relative tables and 0.02 std leave many paths trivially equal.
/// </summary>
public sealed class OnnxExportShapeTests(ITestOutputHelper log)
{
    private const int MaxBatch = 5;

    [Theory]
    [InlineData("vit")]
    [InlineData("mim")]
    [InlineData("vqkd")]
    public void EveryBatchSizeGivesEachImageItsBatchOneResult(string kind)
    {
        using var scope = NewDisposeScope();
        using var model = kind switch
        {
            "vit" => Randomized(new BeitVisionTransformer(VitConfig.Micro(numClasses: 7)), 11),
            "mim" => Randomized(new BeitMim(MimConfig.Micro()), 12),
            _ => (nn.Module)Randomized(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), 13),
        };
        var size = ImageSize(model);
        var graph = ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, OnnxExportOptions.Serving);
        using var session = new OnnxTestSession(graph);
        using var g = new Generator(17);
        var images = randn(new long[] { MaxBatch, 3, size, size }, generator: g);

        var single = Enumerable.Range(0, MaxBatch)
            .Select(i => session.Run(new Dictionary<string, Tensor> { [OnnxNames.Images] = images[i..(i + 1)] })).ToList();
        var worstTorch = new Dictionary<string, Agreement>();
        var worstBatch = new Dictionary<string, Agreement>();
        for (var b = 1; b <= MaxBatch; b++)
        {
            var batch = images[..b];
            var outputs = session.Run(new Dictionary<string, Tensor> { [OnnxNames.Images] = batch });
            var served = Served(model, batch);
            Assert.Equal(served.Keys.Order(), outputs.Keys.Order());
            foreach (var (name, got) in outputs)
            {
                Assert.Equal(b, got.shape[0]);
                Keep(worstTorch, name, OnnxCompare.Strictly($"{name} (batch {b} vs TorchSharp)", served[name], got));
                for (var i = 0; i < b; i++)
                    Keep(worstBatch, name, OnnxCompare.Strictly($"{name} (image {i} of batch {b} vs batch 1)", single[i][name][0], got[i]));
            }
        }
        foreach (var name in worstTorch.Keys.Order())
            log.WriteLine($"{kind} {name}: vs TorchSharp {worstTorch[name]}; vs its batch-1 run {worstBatch[name]}");
        if (model is VqkdTokenizer t) log.WriteLine(CodeMargins(t, images));
    }

    /// <summary>
    /// How far the token ids were from a tie (an exact match of ids means little if every token has one clear code):
    /// distinct ids, and the smallest gap between the nearest and second-nearest code's distance (TorchSharp).
    /// </summary>
    internal static string CodeMargins(VqkdTokenizer t, Tensor imagesPre)
    {
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        using var e = t.Encode(imagesPre);
        var z = nn.functional.normalize(e.EncodeTaskOut.reshape(-1, t.Config.EmbedDim), p: 2, dim: -1);
        var w = t.Quantizer.Embedding.Weight;
        var d = z.pow(2).sum(1, keepdim: true) + w.pow(2).sum(1) - 2 * z.matmul(w.t());
        var two = d.topk(2, dim: 1, largest: false).values;
        var margin = (two[.., 1] - two[.., 0]).min().item<float>();
        var distinct = e.Indices.unique().Item1.numel();
        return $"token ids: {distinct} distinct of {t.Config.NEmbed} codes over {e.Indices.numel()} tokens; smallest margin (2nd-nearest − nearest distance) {margin:g3}";
    }

    private static readonly string[] OddGridNames =
    [
        "vit 48/16 (3x3), abs pos, mean pooling, head",
        "vit 72/8 (9x9), shared rel bias, final norm, no head",
        "vit 40/8 (5x5), per-block rel bias + abs pos, final norm, head",
        "mim 48/16 (3x3), shared rel bias, shared lm head",
        "mim 72/8 (9x9), abs pos, own agg norm and lm head, 2 agg blocks",
        "mim 40/8 (5x5), per-block rel bias, shared lm head",
        "vqkd 48/16 (3x3), abs pos, mean pooling",
        "vqkd 72/8 (9x9), shared rel bias, final norm",
        "vqkd 40/8 (5x5), per-block rel bias + abs pos, mean pooling",
    ];

    /// <summary>Every case with its relative biases as constants, and those with relative biases also gathered at run time.</summary>
    public static TheoryData<string, bool> OddGrids()
    {
        var data = new TheoryData<string, bool>();
        foreach (var name in OddGridNames)
        {
            data.Add(name, false);
            if (name.Contains("rel bias")) data.Add(name, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(OddGrids))]
    public void OddGridMatchesTorchSharp(string name, bool runtimeBias)
    {
        using var scope = NewDisposeScope();
        using var model = Build(name);
        var size = ImageSize(model);
        var entry = ModelCatalog.Default.EntryOf(model)!;
        using var g = new Generator(23);
        var images = randn(new long[] { 3, 3, size, size }, generator: g);
        var inputs = new Dictionary<string, Tensor> { [OnnxNames.Images] = images };

        // Runtime bias: every relative bias above the constant limit (0 here; 4 M floats when serving, a 512 px Base).
        var servedOptions = runtimeBias ? OnnxExportOptions.Serving with { ConstantBiasLimit = 0 } : OnnxExportOptions.Serving;
        var servedGraph = entry.ExportOnnx(model, servedOptions);
        if (runtimeBias) AssertNoBiasConstant(servedGraph, model);

        // The served graph against the served TorchSharp results.
        var served = OnnxTestRun.Run(servedGraph, inputs);
        var expectedServed = Served(model, images);
        Assert.Equal(expectedServed.Keys.Order(), served.Keys.Order());
        foreach (var (output, got) in served)
            log.WriteLine($"served {output}: {OnnxCompare.Strictly(output, expectedServed[output], got)}");

        // The diagnostics graph (MIM: with a random mask) against the model's own intermediates: every output it has.
        Tensor? mask = null;
        if (model is BeitMim mim)
        {
            mask = rand(new long[] { images.shape[0], mim.NumPatches }, generator: g).lt(0.4);
            inputs[OnnxNames.BoolMaskedPos] = mask;
        }
        var diagnostics = OnnxTestRun.Run(entry.ExportOnnx(model,
            new OnnxExportOptions(Diagnostics: true, MaskInput: mask is not null) { ConstantBiasLimit = servedOptions.ConstantBiasLimit }), inputs);
        var expected = Intermediates(model, images, mask);
        foreach (var (output, got) in diagnostics)
        {
            Assert.True(expected.TryGetValue(output, out var want), $"{output}: no TorchSharp counterpart in this test");
            log.WriteLine($"diagnostics {output}: {OnnxCompare.Strictly(output, want, got)}");
        }
        Assert.Empty(expected.Keys.Except(diagnostics.Keys));
        if (model is VqkdTokenizer t) log.WriteLine(CodeMargins(t, images));
    }

    /// <summary>
    /// No (1, H, T, T) bias is stored in the graph, nor in what ONNX Runtime makes of it at session creation (its constant
    /// folding would turn a plain table gather back into the large constant: the optimised model is written out and read).
    /// </summary>
    private static void AssertNoBiasConstant(global::Onnx.ModelProto graph, nn.Module model)
    {
        var c = model switch
        {
            BeitVisionTransformer v => (BeitV2.Ml.Models.VitTrunkConfig)v.Config,
            BeitMim m => m.Config,
            VqkdTokenizer tokenizer => tokenizer.Config.Encoder,
            _ => throw new ArgumentException(model.GetType().Name),
        };
        long t = c.NumPatches + 1, biasElements = c.NumHeads * t * t;
        static long Elements(global::Onnx.TensorProto p) => p.Dims.Aggregate(1L, (a, b) => a * b);
        Assert.DoesNotContain(graph.Graph.Initializer, i => Elements(i) == biasElements && i.Dims.Count == 4);
        Assert.Contains(graph.Graph.Node, n => n.OpType == "Gather" && n.Input[0].EndsWith("relative_position_bias_table", StringComparison.Ordinal));

        using var dir = new TempDirectory();
        var optimised = dir.File("optimised.onnx");
        using (var options = new Microsoft.ML.OnnxRuntime.SessionOptions
               {
                   GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                   OptimizedModelFilePath = optimised,
               })
        using (new Microsoft.ML.OnnxRuntime.InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(graph), options)) { }
        var folded = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimised));
        Assert.DoesNotContain(folded.Graph.Initializer, i => Elements(i) == biasElements);
    }

    private static nn.Module Build(string name)
    {
        var parts = name.Split(' ', 3);
        var sizes = parts[1].Split('/');
        int img = int.Parse(sizes[0]), patch = int.Parse(sizes[1]);
        var features = parts[2];
        var abs = features.Contains("abs pos");
        var perBlock = features.Contains("per-block rel bias");
        var shared = features.Contains("shared rel bias");
        var meanPooling = features.Contains("mean pooling");
        var seed = 100 + (uint)Array.IndexOf(OddGridNames, name);
        switch (parts[0])
        {
            case "vit":
                return Randomized(new BeitVisionTransformer(VitConfig.Micro(numClasses: features.Contains("no head") ? 0 : 5) with
                {
                    ImgSize = img, PatchSize = patch, UseAbsPosEmb = abs, UseRelPosBias = perBlock, UseSharedRelPosBias = shared,
                    UseMeanPooling = meanPooling,
                }), seed);
            case "mim":
                var ownHead = features.Contains("own agg norm");
                return Randomized(new BeitMim(MimConfig.Micro() with
                {
                    ImgSize = img, PatchSize = patch, UseAbsPosEmb = abs, UseRelPosBias = perBlock, UseSharedRelPosBias = shared,
                    SharedLmHead = !ownHead, EarlyLayers = ownHead ? 1 : 2, HeadLayers = ownHead ? 2 : 1,
                }), seed);
            default:
                var c = VqkdConfig.Micro() with { QuantizeKmeansInit = false };
                return Randomized(new VqkdTokenizer(c with
                {
                    Encoder = c.Encoder with
                    {
                        ImgSize = img, PatchSize = patch, UseAbsPosEmb = abs, UseRelPosBias = perBlock, UseSharedRelPosBias = shared,
                        UseMeanPooling = meanPooling,
                    },
                    Decoder = c.Decoder with { ImgSize = img / patch },
                }), seed);
        }
    }

    private static int ImageSize(nn.Module model) => model switch
    {
        BeitVisionTransformer v => v.Config.ImgSize,
        BeitMim m => m.Config.ImgSize,
        VqkdTokenizer t => t.Config.Encoder.ImgSize,
        _ => throw new ArgumentException(model.GetType().Name),
    };

    /// <summary>
    /// Redraws every weight from a generator seeded here: matrices ~ N(0, 1/fan_in), LayerNorm weights 1 + 0.1·N,
    /// everything else (biases, layer scale, [CLS]/[MASK], position embedding) 0.1·N; the VQ-KD codebook as unit rows.
    /// </summary>
    private static T Randomized<T>(T model, ulong seed) where T : nn.Module
    {
        using var g = new Generator(seed);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.StartsWith("quantize.", StringComparison.Ordinal) && name != "quantize.embedding.weight") continue;
            using var r = randn(p.shape, generator: g);
            if (name == "quantize.embedding.weight") p.copy_(nn.functional.normalize(r, p: 2, dim: -1));
            else if (p.dim() >= 2 && !name.Contains("token") && !name.Contains("pos_embed")) p.copy_(r / Math.Sqrt(p.numel() / p.shape[0]));
            else if (name.Contains("norm") && name.EndsWith(".weight", StringComparison.Ordinal)) p.copy_(r * 0.1 + 1);
            else p.copy_(r * 0.1);
        }
        model.eval();
        return model;
    }

    /// <summary>What the TorchSharp serving path returns for a batch, as the graph's served outputs ((B, …) tensors).</summary>
    private static Dictionary<string, Tensor> Served(nn.Module model, Tensor images)
    {
        using var _ = inference_mode();
        var preprocessing = ModelCatalog.Default.DefaultPreprocessing(model)!;
        var b = images.shape[0];
        // Not disposed: a ServedModel disposes its module, which the test owns.
        ServedModel served = model switch
        {
            BeitVisionTransformer v => new ServedVit(v, preprocessing),
            BeitMim m => new ServedMim(m, preprocessing),
            VqkdTokenizer t => new ServedTokenizer(t, preprocessing),
            _ => throw new ArgumentException(model.GetType().Name),
        };
        var batch = ImageBatch.Of(images);
        var result = new Dictionary<string, Tensor>();
        if (model is VqkdTokenizer)
        {
            var tokens = served.Tokens(batch);
            result[OnnxNames.TokenIds] = tensor(tokens.SelectMany(r => r.Ids).ToArray(), b, tokens[0].Ids.Length);
            return result;
        }
        var features = served.Features(batch);
        result[OnnxNames.Cls] = tensor(features.SelectMany(r => r.Cls).ToArray(), b, features[0].Cls.Length);
        result[OnnxNames.Mean] = tensor(features.SelectMany(r => r.Mean).ToArray(), b, features[0].Mean.Length);
        if (model is BeitVisionTransformer { Head: not null })
        {
            var probs = served.Classify(batch);
            result[OnnxNames.Probs] = tensor(probs.SelectMany(r => r.Probabilities).ToArray(), b, probs[0].Probabilities.Length);
        }
        return result;
    }

    /// <summary>The TorchSharp counterpart of every output of a diagnostics graph.</summary>
    private static Dictionary<string, Tensor> Intermediates(nn.Module model, Tensor images, Tensor? mask)
    {
        using var _ = inference_mode();
        var r = new Dictionary<string, Tensor>();
        switch (model)
        {
            case BeitVisionTransformer v:
            {
                using var o = v.ForwardFeatures(images, keepHidden: true);
                for (var i = 0; i < o.Hidden.Count; i++) r[OnnxNames.Hidden(i)] = o.Hidden[i].clone();
                r["features"] = o.Features.clone();
                r[OnnxNames.Cls] = o.Tokens[.., 0].clone();
                r[OnnxNames.Mean] = v.Config.UseMeanPooling ? o.Features.clone() : o.Tokens[.., 1..].mean(new long[] { 1 });
                if (v.Head is not null)
                {
                    r["logits"] = v.ForwardHead(o.Features);
                    r[OnnxNames.Probs] = r["logits"].softmax(-1);
                }
                break;
            }
            case BeitMim m:
            {
                using var f = m.ForwardFeatures(images, mask, keepHidden: true);
                for (var i = 0; i < f.Hidden.Count; i++) r[OnnxNames.Hidden(i)] = f.Hidden[i].clone();
                for (var i = 0; i < f.AggregationHidden.Count; i++) r[$"agg_hidden_{i}"] = f.AggregationHidden[i].clone();
                r[OnnxNames.Cls] = f.Final[.., 0].clone();
                r[OnnxNames.Mean] = f.Final[.., 1..].mean(new long[] { 1 });
                var patches = m.ForwardPatchTokens(images, mask);
                r["patch_tokens_final"] = patches[0];
                r["patch_tokens_agg"] = patches[1];
                var logits = m.ForwardAllTokens(images, mask);
                r["logits_all_final"] = logits[0];
                r["logits_all_agg"] = logits[1];
                break;
            }
            case VqkdTokenizer t:
            {
                using var e = t.Encode(images, keepHidden: true);
                for (var i = 0; i < e.EncoderHidden.Count; i++) r[$"encoder_hidden_{i}"] = e.EncoderHidden[i].clone();
                r["encoder_out"] = e.EncoderOut.clone();
                r["encode_task_out"] = e.EncodeTaskOut.clone();
                r["quantized"] = e.Quantized.clone();
                r[OnnxNames.TokenIds] = e.Indices.clone();
                break;
            }
            default:
                throw new ArgumentException(model.GetType().Name);
        }
        return r;
    }

    private static void Keep(Dictionary<string, Agreement> worst, string name, Agreement a)
    {
        if (!worst.TryGetValue(name, out var w) || a.Share > w.Share) worst[name] = a;
    }
}
