using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using BeitV2.Ml.Training;
using BeitV2.Web.Inference;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>
/// <c>int8</c>: what <c>Inference:Precision=int8</c> (<see cref="OnnxInt8Quantizer"/>) costs in agreement and gains in
/// speed. For the shipped default models (classifier, tokenizer, segmenter), each exported by the catalogue in fp32 and
/// int8 and run by ONNX Runtime on the CPU: classifier top-1 agreement int8 vs fp32 on the whole Fashion-MNIST test split
/// and on the fixture photos, tokenizer token-id agreement, segmenter mIoU, each beside accuracy against the labels and the
/// TorchSharp path (which fp32 must reproduce). Then time per image of a ViT-B/16 with random weights, fp32 vs int8,
/// batch 1 and 8, alternating, medians. A kind without an ONNX exporter is skipped with a note.
/// </summary>
public static class Int8AgreementBench
{
    public const string Usage = """
        usage: BeitV2.Bench int8 [options]

          --models DIR        the default models (BeitV2.Web/DefaultModels, found above the working directory)
          --fashion DIR       Fashion-MNIST IDX files (/usr/share/datasets/fashion-mnist)
          --images DIR        photos (BEITV2_FIXTURES/../images, else ../shared/fixtures/images)
          --limit N           first N test images only (all 10,000)
          --threads N         ONNX Runtime intra-op threads (2)
          --rounds R          timed runs per case after one warm-up (9)
          --variants          also time the other int8 forms (MatMulInteger, no bias folding, 7-bit weights, u8 weights)
          --roles LIST        default models to evaluate: any of classifier,tokenizer,segmenter (all)
          --no-eval | --no-speed

        Prints markdown: agreement of int8 with fp32 for the default models, then ViT-B ms/image fp32 vs int8.
        """;

    private static readonly string[] AllRoles = { "classifier", "tokenizer", "segmenter" };

    private sealed record Options
    {
        public string? Models { get; init; }
        public string Fashion { get; init; } = FashionMnistDataset.DefaultDirectory;
        public string? Images { get; init; }
        public int? Limit { get; init; }
        public int Threads { get; init; } = 2;
        public int Rounds { get; init; } = 9;
        public bool Variants { get; init; }
        public IReadOnlyList<string> Roles { get; init; } = AllRoles;
        public bool Eval { get; init; } = true;
        public bool Speed { get; init; } = true;
    }

    public static int Run(IReadOnlyList<string> args)
    {
        Options o;
        try
        {
            o = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n\n{Usage}");
            return 2;
        }
        set_num_threads(o.Threads);
        Console.WriteLine("# int8 (dynamic, per-column int8 MatMul weights) vs fp32, ONNX Runtime CPU\n");
        Console.WriteLine($"- {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; CPU: {CpuName()} ({Environment.ProcessorCount} logical); " +
                          $"ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version}; {o.Threads} intra-op threads, 1 inter-op, ORT_ENABLE_ALL, sequential");
        Console.WriteLine($"- int8 graph: {Describe(OnnxInt8Options.Default)}; load average {LoadAverage()}\n");
        if (o.Eval) Agreement(o);
        if (o.Speed) Speed(o);
        return 0;
    }

    private static Options Parse(IReadOnlyList<string> args)
    {
        var o = new Options();
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Positive()
            {
                var s = Next();
                return int.TryParse(s, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{args[i - 1]}: '{s}' is not a positive integer.");
            }
            o = args[i] switch
            {
                "--models" => o with { Models = Next() },
                "--fashion" => o with { Fashion = Next() },
                "--images" => o with { Images = Next() },
                "--limit" => o with { Limit = Positive() },
                "--threads" => o with { Threads = Positive() },
                "--rounds" => o with { Rounds = Positive() },
                "--variants" => o with { Variants = true },
                "--roles" => o with
                {
                    Roles = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) is var r && r.Length > 0 && r.All(AllRoles.Contains)
                        ? r : throw new ArgumentException($"--roles: a list of {string.Join(", ", AllRoles)}."),
                },
                "--no-eval" => o with { Eval = false },
                "--no-speed" => o with { Speed = false },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }
        return o;
    }

    // ---------------------------------------------------------------- agreement on the default models

    private static void Agreement(Options o)
    {
        var models = o.Models ?? FindAbove(Path.Combine("BeitV2.Web", "DefaultModels"))
            ?? throw new DirectoryNotFoundException("BeitV2.Web/DefaultModels not found above the working directory: pass --models.");
        var defaults = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(models, "defaults.json")))!;
        var test = new FashionMnistDataset(o.Fashion, FashionMnistSplit.Test);
        var count = Math.Min(o.Limit ?? test.Count, test.Count);
        Console.WriteLine($"## Default models ({models}); Fashion-MNIST test split: {count} images\n");
        foreach (var role in o.Roles)
        {
            if (!defaults.TryGetValue(role, out var folder))
            {
                Console.WriteLine($"### {role}: none in defaults.json\n");
                continue;
            }
            using var package = ModelPackage.Load(Path.Combine(models, folder));
            var entry = ModelCatalog.Default.EntryOf(package.Module)!;
            Console.WriteLine($"### {role}: `{folder}` ({entry.Kind})\n");
            if (!entry.CanExportOnnx)
            {
                Console.WriteLine($"Skipped: the {entry.Kind} kind has no ONNX exporter in this build (`CanExportOnnx` is false).\n");
                continue;
            }
            package.Module.eval();
            var served = ModelCatalog.Default.Serve(package) ?? throw new InvalidOperationException($"{folder} is not served.");
            var input = new ModelInput(served.Preprocessing);
            var sw = Stopwatch.StartNew();
            var fp32Graph = entry.ExportOnnx(package.Module, OnnxExportOptions.Serving);
            var int8Graph = OnnxInt8Quantizer.Quantize(fp32Graph);
            using var fp32 = new OrtModel(fp32Graph, o.Threads);
            using var int8 = new OrtModel(int8Graph, o.Threads);
            Console.WriteLine($"Graphs: fp32 {fp32Graph.CalculateSize() / 1e6:F2} MB, int8 {int8Graph.CalculateSize() / 1e6:F2} MB " +
                              $"({int8Graph.Graph.Node.Count(n => n.OpType == "DynamicQuantizeMatMul")} DynamicQuantizeMatMul, " +
                              $"{int8Graph.Graph.Node.Count(n => n.OpType == "MatMul")} MatMul left fp32); export + sessions {sw.ElapsedMilliseconds} ms.\n");
            sw.Restart();
            switch (role)
            {
                case "classifier":
                    Classifier(test, count, input, served, fp32, int8);
                    Photos(o, input, fp32, int8, package.Manifest.Labels);
                    break;
                case "tokenizer":
                    Tokenizer(test, count, input, served, fp32, int8);
                    break;
                case "segmenter":
                    Segmenter(test, count, input, served, fp32, int8, ((BeitV2.Ml.Models.Segmentation.BeitSegmenter)package.Module).Config.NumClasses);
                    break;
            }
            Console.WriteLine($"({sw.Elapsed.TotalSeconds:F0} s; load average {LoadAverage()})\n");
        }
    }

    private const int EvalBatch = 64;

    /// <summary>Batches of preprocessed images (the serving transform of <paramref name="input"/>), with their samples.</summary>
    private static IEnumerable<(float[] Data, long[] Shape, ImageSample[] Samples)> Batches(IImageDataset set, int count, ModelInput input)
    {
        for (var start = 0; start < count; start += EvalBatch)
        {
            var b = Math.Min(EvalBatch, count - start);
            var data = new float[b * input.Length];
            var samples = new ImageSample[b];
            for (var i = 0; i < b; i++)
            {
                samples[i] = set.Get(start + i);
                using var image = samples[i].Image.ToImage();
                var pixels = input.Prepare(image, out _);
                pixels.AsSpan(0, input.Length).CopyTo(data.AsSpan(i * input.Length));
                ArrayPool<float>.Shared.Return(pixels);
            }
            yield return (data, new long[] { b, 3, input.Size, input.Size }, samples);
        }
    }

    private static void Classifier(FashionMnistDataset test, int count, ModelInput input, ServedModel served, OrtModel fp32, OrtModel int8)
    {
        int n = 0, agree = 0, agreeAlone = 0, fp32Right = 0, int8Right = 0, torchRight = 0, fp32Torch = 0;
        double maxProbDiff = 0;
        var k = fp32.Outputs[OnnxNames.Probs][1];
        var one = new long[] { 1, 3, input.Size, input.Size };
        foreach (var (data, shape, samples) in Batches(test, count, input))
        {
            var a = fp32.RunFloat(data, shape, OnnxNames.Probs);
            var q = int8.RunFloat(data, shape, OnnxNames.Probs);
            var t = TorchClassify(served, data, shape);
            for (var i = 0; i < samples.Length; i++, n++)
            {
                int pa = ArgMax(a.AsSpan(i * k, k)), pq = ArgMax(q.AsSpan(i * k, k)), pt = ArgMax(t[i]);
                // The activations are quantised per tensor, i.e. over the whole batch: the image alone gets its own scales.
                var alone = ArgMax(int8.RunFloat(data.AsSpan(i * input.Length, input.Length).ToArray(), one, OnnxNames.Probs));
                agreeAlone += pa == alone ? 1 : 0;
                agree += pa == pq ? 1 : 0;
                fp32Torch += pa == pt ? 1 : 0;
                fp32Right += pa == samples[i].Label ? 1 : 0;
                int8Right += pq == samples[i].Label ? 1 : 0;
                torchRight += pt == samples[i].Label ? 1 : 0;
                for (var j = 0; j < k; j++) maxProbDiff = Math.Max(maxProbDiff, Math.Abs(a[i * k + j] - q[i * k + j]));
            }
        }
        Console.WriteLine($"Fashion-MNIST test, {n} images:\n");
        Console.WriteLine("| measure | value |\n| --- | --- |");
        Console.WriteLine($"| **top-1 agreement int8 vs fp32**, batches of {EvalBatch} | **{Pct(agree, n)}** ({n - agree} differ) |");
        Console.WriteLine($"| **top-1 agreement int8 vs fp32**, one image at a time | **{Pct(agreeAlone, n)}** ({n - agreeAlone} differ) |");
        Console.WriteLine($"| accuracy fp32 (ONNX) / int8 (ONNX) / TorchSharp | {Pct(fp32Right, n)} / {Pct(int8Right, n)} / {Pct(torchRight, n)} |");
        Console.WriteLine($"| top-1 agreement fp32 ONNX vs TorchSharp | {Pct(fp32Torch, n)} |");
        Console.WriteLine($"| max \\|p_int8 − p_fp32\\| over all probabilities (batches of {EvalBatch}) | {maxProbDiff:F4} |\n");
    }

    private static void Photos(Options o, ModelInput input, OrtModel fp32, OrtModel int8, IReadOnlyList<string>? labels)
    {
        var dir = o.Images ?? (Environment.GetEnvironmentVariable("BEITV2_FIXTURES") is { Length: > 0 } env
            ? Path.Combine(env, "..", "images")
            : FindAbove(Path.Combine("..", "shared", "fixtures", "images")));
        if (dir is null || !Directory.Exists(dir))
        {
            Console.WriteLine("Fixture photos: not found (set BEITV2_FIXTURES or pass --images).\n");
            return;
        }
        var files = Directory.GetFiles(dir).Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal).ToList();
        Console.WriteLine($"Fixture photos ({Path.GetFullPath(dir)}), one at a time:\n");
        Console.WriteLine("| photo | fp32 top-1 (p) | int8 top-1 (p) | same |\n| --- | --- | --- | --- |");
        int n = 0, agree = 0;
        foreach (var file in files)
        {
            Image<Rgb24> image;
            try
            {
                image = Image.Load<Rgb24>(file);
            }
            catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException or InvalidImageContentException)
            {
                Console.WriteLine($"| {Path.GetFileName(file)} | not decodable ({e.GetType().Name}) | | |");
                continue;
            }
            using (image)
            {
                var pixels = input.Prepare(image, out _);
                var data = pixels.AsSpan(0, input.Length).ToArray();
                ArrayPool<float>.Shared.Return(pixels);
                var shape = new long[] { 1, 3, input.Size, input.Size };
                var a = fp32.RunFloat(data, shape, OnnxNames.Probs);
                var q = int8.RunFloat(data, shape, OnnxNames.Probs);
                int pa = ArgMax(a), pq = ArgMax(q);
                n++;
                agree += pa == pq ? 1 : 0;
                string Name(int c) => labels is not null && c < labels.Count ? labels[c] : c.ToString(CultureInfo.InvariantCulture);
                Console.WriteLine($"| {Path.GetFileName(file)} | {Name(pa)} ({a[pa]:F3}) | {Name(pq)} ({q[pq]:F3}) | {(pa == pq ? "yes" : "**no**")} |");
            }
        }
        Console.WriteLine($"\nPhotos: top-1 agreement {agree}/{n}.\n");
    }

    private static void Tokenizer(FashionMnistDataset test, int count, ModelInput input, ServedModel served, OrtModel fp32, OrtModel int8)
    {
        long tokens = 0, agree = 0, fp32Torch = 0;
        int images = 0, wholeImages = 0;
        var used = new HashSet<long>();
        foreach (var (data, shape, samples) in Batches(test, count, input))
        {
            var a = fp32.RunLong(data, shape, OnnxNames.TokenIds);
            var q = int8.RunLong(data, shape, OnnxNames.TokenIds);
            TokensResult[] t;
            using (inference_mode())
            using (NewDisposeScope())
                t = served.Tokens(ImageBatch.Of(tensor(data, shape)));
            var per = a.Length / samples.Length;
            for (var i = 0; i < samples.Length; i++, images++)
            {
                var same = 0;
                for (var j = 0; j < per; j++)
                {
                    same += a[i * per + j] == q[i * per + j] ? 1 : 0;
                    fp32Torch += a[i * per + j] == t[i].Ids[j] ? 1 : 0;
                    used.Add(a[i * per + j]);
                }
                agree += same;
                tokens += per;
                wholeImages += same == per ? 1 : 0;
            }
        }
        Console.WriteLine($"Fashion-MNIST test, {images} images, {tokens} tokens ({used.Count} distinct codes in fp32):\n");
        Console.WriteLine("| measure | value |\n| --- | --- |");
        Console.WriteLine($"| **token-id agreement int8 vs fp32** | **{Pct(agree, tokens)}** |");
        Console.WriteLine($"| images with every token the same | {Pct(wholeImages, images)} |");
        Console.WriteLine($"| token-id agreement fp32 ONNX vs TorchSharp | {Pct(fp32Torch, tokens)} |\n");
    }

    private static void Segmenter(FashionMnistDataset test, int count, ModelInput input, ServedModel served, OrtModel fp32, OrtModel int8, int numClasses)
    {
        // The pipeline's validation scenes (DatasetCatalog: seed + 1 over the test split, seed 0), squashed to the model's
        // input as served; the 64 px ground truth taken to the prediction's size by nearest neighbour (torch's 'nearest').
        var scenes = new FashionMnistSegmentationDataset(test, new FashionMnistSegmentationOptions { Seed = 1 });
        var mA = new SegmentationMetrics(numClasses);
        var mQ = new SegmentationMetrics(numClasses);
        var mT = new SegmentationMetrics(numClasses);
        long pixels = 0, agree = 0, fp32Torch = 0;
        var s = input.Size;
        foreach (var (data, shape, samples) in Batches(scenes, count, input))
        {
            var a = fp32.RunLong(data, shape, OnnxNames.Classes);
            var q = int8.RunLong(data, shape, OnnxNames.Classes);
            ClassMap[] t;
            using (inference_mode())
            using (NewDisposeScope())
                t = served.Segment(ImageBatch.Of(tensor(data, shape)));
            var truth = new long[a.Length];
            var torchClasses = new long[a.Length];
            for (var i = 0; i < samples.Length; i++)
            {
                var src = samples[i];
                int w = src.Image.Width, h = src.Image.Height;
                for (var y = 0; y < s; y++)
                    for (var x = 0; x < s; x++)
                        truth[(i * s + y) * s + x] = src.Mask![(int)Math.Floor(y * (double)h / s) * w + (int)Math.Floor(x * (double)w / s)];
                for (var p = 0; p < s * s; p++) torchClasses[i * s * s + p] = t[i].Classes[p];
            }
            for (var p = 0; p < a.Length; p++)
            {
                agree += a[p] == q[p] ? 1 : 0;
                fp32Torch += a[p] == torchClasses[p] ? 1 : 0;
            }
            pixels += a.Length;
            using var scope = NewDisposeScope();
            var gt = tensor(truth, new long[] { shape[0], s, s });
            mA.Update(tensor(a, new long[] { shape[0], s, s }), gt);
            mQ.Update(tensor(q, new long[] { shape[0], s, s }), gt);
            mT.Update(tensor(torchClasses, new long[] { shape[0], s, s }), gt);
        }
        Console.WriteLine($"Fashion-MNIST segmentation scenes (test split, seed 1, 64 px canvas → {s} px), {count} scenes:\n");
        Console.WriteLine("| measure | fp32 (ONNX) | int8 (ONNX) | TorchSharp |\n| --- | --- | --- | --- |");
        Console.WriteLine($"| mIoU | {mA.MeanIoU:F4} | {mQ.MeanIoU:F4} | {mT.MeanIoU:F4} |");
        Console.WriteLine($"| mAcc | {mA.MeanAccuracy:F4} | {mQ.MeanAccuracy:F4} | {mT.MeanAccuracy:F4} |");
        Console.WriteLine($"| aAcc | {mA.PixelAccuracy:F4} | {mQ.PixelAccuracy:F4} | {mT.PixelAccuracy:F4} |\n");
        Console.WriteLine($"**mIoU change int8 − fp32: {(mQ.MeanIoU - mA.MeanIoU).ToString("E2", CultureInfo.InvariantCulture)}**; pixel agreement int8 vs fp32 {Pct(agree, pixels)}, fp32 ONNX vs TorchSharp {Pct(fp32Torch, pixels)}.\n");
    }

    private static float[][] TorchClassify(ServedModel served, float[] data, long[] shape)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        return served.Classify(ImageBatch.Of(tensor(data, shape))).Select(p => p.Probabilities).ToArray();
    }

    // ---------------------------------------------------------------- speed: ViT-B/16, random weights

    private static void Speed(Options o)
    {
        Console.WriteLine($"## Speed: BEiT ViT-B/16 224 px, 1000 classes, random weights; {o.Threads} threads; 1 warm-up + {o.Rounds} runs per case, alternating\n");
        manual_seed(0);
        using var model = new BeitVisionTransformer(VitConfig.Base(1000));
        model.eval();
        var sw = Stopwatch.StartNew();
        var fp32Graph = VitOnnxExporter.Export(model, OnnxExportOptions.Serving);
        var exportMs = sw.ElapsedMilliseconds;
        var cases = new List<(string Name, OnnxInt8Options? Int8, Dictionary<string, string>? Config)>
        {
            ("fp32", null, null),
            ("int8", OnnxInt8Options.Default, null),
        };
        if (o.Variants)
        {
            cases.Add(("int8 MatMulInteger form", OnnxInt8Options.Default with { Form = Int8MatMulForm.MatMulInteger }, null));
            cases.Add(("int8 bias not folded", OnnxInt8Options.Default with { FoldBias = false }, null));
            cases.Add(("int8 7-bit weights (reduce_range)", OnnxInt8Options.Default with { ReduceRange = true }, null));
            // ORT rewrites int8 weights as uint8 (zero point 128) and runs its u8u8 kernels: the exact mode for x86 without VNNI.
            cases.Add(("int8 + session.x64quantprecision=1 (u8 weights)", OnnxInt8Options.Default, new() { ["session.x64quantprecision"] = "1" }));
        }
        var sessions = new List<(string Name, OrtModel Model)>();
        var optimizedDir = Directory.CreateTempSubdirectory("beitv2-int8-");
        try
        {
            foreach (var (name, int8, config) in cases)
            {
                sw.Restart();
                var graph = int8 is null ? fp32Graph : OnnxInt8Quantizer.Quantize(fp32Graph, int8);
                var quantiseMs = sw.ElapsedMilliseconds;
                var optimized = Path.Combine(optimizedDir.FullName, $"{sessions.Count}.onnx");
                sw.Restart();
                var session = new OrtModel(graph, o.Threads, config, optimized);
                Console.WriteLine($"- {name}: graph {graph.CalculateSize() / 1e6:F0} MB ({(int8 is null ? $"export {exportMs} ms" : $"quantised in {quantiseMs} ms")}), " +
                                  $"session {sw.ElapsedMilliseconds} ms; ORT's optimised graph: {OpCounts(optimized)}");
                sessions.Add((name, session));
            }
            Console.WriteLine();
            var rng = new Random(1);
            foreach (var batch in new[] { 1, 8 })
            {
                var shape = new long[] { batch, 3, 224, 224 };
                var data = new float[batch * 3 * 224 * 224];
                for (var i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
                var times = sessions.ToDictionary(s => s.Name, _ => new List<double>());
                var reference = sessions[0].Model.RunFloat(data, shape, OnnxNames.Mean);
                var errors = new Dictionary<string, double>();
                var load0 = LoadAverage();
                for (var r = -1; r < o.Rounds; r++)
                    foreach (var (name, s) in sessions)
                    {
                        var t0 = Stopwatch.GetTimestamp();
                        var mean = s.RunFloat(data, shape, OnnxNames.Mean);
                        if (r >= 0) times[name].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                        else errors[name] = RelativeError(mean, reference);
                    }
                Console.WriteLine($"Batch {batch}; load average before [{load0}], after [{LoadAverage()}]:\n");
                // Paired ratio: fp32 ÷ this within each round (the two ran seconds apart, under the same load), then the median.
                Console.WriteLine("| graph | ms/image, median | min | max | fp32 ÷ this, medians | fp32 ÷ this, median of paired rounds | `mean` features vs fp32, relative RMS |\n| --- | --- | --- | --- | --- | --- | --- |");
                var fp32Times = times[sessions[0].Name];
                foreach (var (name, list) in times)
                {
                    var med = Median(list) / batch;
                    var paired = Median(list.Select((t, i) => fp32Times[i] / t).ToList());
                    Console.WriteLine($"| {name} | {med:F1} | {list.Min() / batch:F1} | {list.Max() / batch:F1} | {Median(fp32Times) / batch / med:F2}× | {paired:F2}× | {errors[name]:P2} |");
                }
                Console.WriteLine();
            }
        }
        finally
        {
            foreach (var (_, s) in sessions) s.Dispose();
            optimizedDir.Delete(recursive: true);
        }
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>One ONNX Runtime session on a graph (CPU), run on float32 images.</summary>
    private sealed class OrtModel : IDisposable
    {
        private readonly InferenceSession session;
        private readonly SessionOptions options;

        public OrtModel(global::Onnx.ModelProto graph, int threads, IReadOnlyDictionary<string, string>? config = null, string? optimizedPath = null)
        {
            options = new SessionOptions
            {
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            };
            if (optimizedPath is not null) options.OptimizedModelFilePath = optimizedPath;
            foreach (var (k, v) in config ?? new Dictionary<string, string>()) options.AddSessionConfigEntry(k, v);
            session = new InferenceSession(graph.ToByteArray(), options);
            Outputs = session.OutputMetadata.ToDictionary(m => m.Key, m => m.Value.Dimensions);
        }

        public IReadOnlyDictionary<string, int[]> Outputs { get; }

        public float[] RunFloat(float[] data, long[] shape, string output) => Run(data, shape, output, v => v.GetTensorDataAsSpan<float>().ToArray());
        public long[] RunLong(float[] data, long[] shape, string output) => Run(data, shape, output, v => v.GetTensorDataAsSpan<long>().ToArray());

        private T Run<T>(float[] data, long[] shape, string output, Func<OrtValue, T> read)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
            using var run = new RunOptions();
            using var results = session.Run(run, new[] { OnnxNames.Images }, new[] { input }, new[] { output });
            return read(results[0]);
        }

        public void Dispose()
        {
            session.Dispose();
            options.Dispose();
        }
    }

    private static string Describe(OnnxInt8Options o) =>
        $"{o.Form}, weights {(o.ReduceRange ? "7-bit [-64, 64]" : "int8 [-127, 127]")} symmetric per output column, activations uint8 per tensor at run time" +
        (o.FoldBias ? ", bias folded" : "");

    private static string OpCounts(string path)
    {
        if (!File.Exists(path)) return "(not written)";
        var m = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        return string.Join(", ", m.Graph.Node.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Where(g => g.Key is not ("Shape" or "Slice" or "Concat" or "Gather" or "Unsqueeze" or "Squeeze" or "Expand" or "Identity"))
            .Select(g => $"{g.Key} {g.Count()}"));
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        var best = 0;
        for (var i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static double RelativeError(float[] a, float[] reference)
    {
        double d = 0, r = 0;
        for (var i = 0; i < a.Length; i++)
        {
            d += (double)(a[i] - reference[i]) * (a[i] - reference[i]);
            r += (double)reference[i] * reference[i];
        }
        return Math.Sqrt(d / r);
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string Pct(long part, long whole) => whole == 0 ? "n/a" : $"{100.0 * part / whole:F2} %";

    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    private static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            var flags = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal)) ?? "";
            var vnni = flags.Contains("avx512_vnni", StringComparison.Ordinal) ? "AVX512-VNNI" : flags.Contains("avx_vnni", StringComparison.Ordinal) ? "AVX-VNNI" : "no VNNI";
            return $"{line?.Split(':', 2)[1].Trim() ?? "unknown"}, {vnni}";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The first existing <paramref name="relative"/> path above the working directory or the executable.</summary>
    private static string? FindAbove(string relative)
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, relative);
                if (Directory.Exists(candidate)) return Path.GetFullPath(candidate);
            }
        return null;
    }
}
