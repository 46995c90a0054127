using System.Diagnostics;
using System.Text.Json;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Onnx;
using Google.Protobuf;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>
/// <c>perf</c>'s engine comparison (issue 17): per case (classifier, tokenizer, segmenter; Base and tiny;
/// batch 1 and 8) the same forward in every engine — the naive ONNX Runtime anchor (the PyTorch reference
/// exported by <c>torch.onnx.export</c>), our ONNX export in fp32 and int8, our TorchSharp model and PyTorch
/// eager — taking turns: each repetition runs every engine once, in an order that rotates, with a pause
/// between engines so that no engine pays for another's thread spin-down. The C# engines share this
/// process; PyTorch runs in a worker process of its own. Medians and minima over the repetitions.
/// </summary>
public static class EngineBench
{
    public static readonly string[] Kinds = { "classifier", "tokenizer", "segmenter" };

    /// <summary>One case: per engine the ms per batch of each repetition, or why the engine has no figure.</summary>
    public sealed class Case(string kind, string size, int batch, int inputSize)
    {
        public string Kind { get; } = kind;
        public string Size { get; } = size;
        public int Batch { get; } = batch;
        public int InputSize { get; } = inputSize;
        public string Detail { get; set; } = "";
        public Dictionary<string, List<double>> Ms { get; } = new();
        public Dictionary<string, string> Missing { get; } = new();
        public string LoadBefore { get; set; } = "?";
        public string LoadAfter { get; set; } = "?";
        public double ForeignCores { get; set; } = double.NaN;
        public int Reps { get; set; }
        public int Warmup { get; set; }
        /// <summary>Tokens per image (the tokenizer's patch grid).</summary>
        public int TokensPerImage => (InputSize / 16) * (InputSize / 16);

        public double MedianPerImage(string engine) => Ms.TryGetValue(engine, out var l) && l.Count > 0 ? Median(l) / Batch : double.NaN;
        public double MinPerImage(string engine) => Ms.TryGetValue(engine, out var l) && l.Count > 0 ? l.Min() / Batch : double.NaN;
        /// <summary>How many times faster <paramref name="engine"/> is than <paramref name="baseline"/> (medians).</summary>
        public double SpeedUp(string engine, string baseline) => MedianPerImage(baseline) / MedianPerImage(engine);
    }

    public sealed record Settings(
        IReadOnlyList<string> Sizes, IReadOnlyList<string> Kinds, IReadOnlyList<int> Batches, IReadOnlyList<string> Engines,
        int? Reps, int Threads, int SettleMs, bool Heavy, bool Quick, string Python, int WaitQuietSeconds = 0);

    /// <summary>Repetitions and warm-up runs per engine: fewer where one forward takes seconds.</summary>
    public static (int Warmup, int Reps) Runs(Settings s, string kind, string size, int batch)
    {
        if (s.Quick) return (1, 1);
        var heavy = size == "base" && kind == "segmenter";   // 512 px: ~12 s per image in TorchSharp
        // Base at batch 8 drifted by ±15 % between two quiet runs of 3 repetitions: 5 keep the median steadier.
        var reps = s.Reps ?? (heavy ? 2 : size == "base" ? (batch == 1 ? 9 : 5) : (batch == 1 ? 15 : 6));
        return (heavy ? (batch == 1 ? 1 : 0) : size == "base" ? 1 : 2, heavy && batch > 1 ? 1 : reps);
    }

    public static async Task<List<Case>> RunAsync(Settings s, CancellationToken ct)
    {
        var cases = new List<Case>();
        var workDir = Path.Combine(Path.GetTempPath(), $"beitv2-engines-{Guid.NewGuid():N}"[..30]);
        Directory.CreateDirectory(workDir);
        var workers = new List<PyTorchWorker>();
        try
        {
            foreach (var key in s.Engines.Where(EngineKeys.IsPyTorch))
                workers.Add(new PyTorchWorker(s.Python, s.Threads, key == EngineKeys.PyTorchSpinning));
            foreach (var size in s.Sizes)
                foreach (var kind in s.Kinds)
                {
                    ct.ThrowIfCancellationRequested();
                    var batches = s.Batches.Where(b => b == 1 || !(size == "base" && kind == "segmenter") || s.Heavy).ToList();
                    if (batches.Count == 0) continue;
                    cases.AddRange(await RunKindAsync(s, kind, size, batches, workers, workDir, ct));
                }
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
            try { Directory.Delete(workDir, recursive: true); }
            catch (IOException e) { Progress($"could not delete {workDir}: {e.Message}"); }
        }
        return cases;
    }

    private static async Task<List<Case>> RunKindAsync(Settings s, string kind, string size, List<int> batches, List<PyTorchWorker> workers,
        string workDir, CancellationToken ct)
    {
        Progress($"{kind} {size}: building the TorchSharp model");
        using var module = Build(kind, size, out var inputSize, out Func<Tensor, Tensor> forward, out var what);
        module.eval();
        var detail = $"{what}, {inputSize} px, {module.parameters().Sum(p => p.numel()) / 1e6:0.0} M params";
        var sessions = new Dictionary<string, OrtForward.Session>();
        var missing = new Dictionary<string, string>();
        var notes = new List<string>();
        try
        {
            if (s.Engines.Contains(EngineKeys.Anchor))
                await AnchorAsync(s, kind, size, workDir, sessions, missing, notes, ct);
            foreach (var (key, precision) in new[] { (EngineKeys.Onnx, OnnxPrecision.Fp32), (EngineKeys.OnnxInt8, OnnxPrecision.Int8) })
                if (s.Engines.Contains(key)) Ours(s, key, precision, module, sessions, missing, notes);

            var output = OutputName(kind);
            var results = new List<Case>();
            foreach (var batch in batches)
            {
                var c = new Case(kind, size, batch, inputSize) { Detail = detail + (notes.Count > 0 ? "; " + string.Join("; ", notes) : "") };
                foreach (var (k, why) in missing) c.Missing[k] = why;
                var engines = new List<ForwardEngine>();
                try
                {
                    foreach (var key in s.Engines)
                    {
                        if (sessions.TryGetValue(key, out var session))
                            engines.Add(OrtForward.On(key, session, batch, inputSize,
                                session.Inner.OutputMetadata.ContainsKey(output) ? new[] { output } : session.Inner.OutputMetadata.Keys.ToArray()));
                        else if (key == EngineKeys.TorchSharp) engines.Add(new TorchSharpForward(batch, inputSize, forward));
                        else if (workers.FirstOrDefault(w => w.Key == key) is { } worker)
                        {
                            var (engine, error) = worker.Load(kind, size, batch);
                            if (engine is not null) engines.Add(engine);
                            else c.Missing[key] = $"n/a (the reference failed: {error})";
                        }
                    }
                    // On a shared machine: wait (bounded) for a window in which other processes leave the cores alone.
                    await CpuMonitor.WaitQuietAsync(() => workers.Select(w => w.Pid).Append(Environment.ProcessId).ToArray(), 0.2,
                        TimeSpan.FromSeconds(s.WaitQuietSeconds), Progress, ct);
                    RoundRobin(s, c, engines, workers);
                }
                finally
                {
                    foreach (var e in engines) e.Dispose();
                }
                results.Add(c);
            }
            return results;
        }
        finally
        {
            foreach (var session in sessions.Values) session.Dispose();
        }
    }

    /// <summary>The repetitions of one case: warm-up runs per engine, then every engine once per repetition.</summary>
    private static void RoundRobin(Settings s, Case c, List<ForwardEngine> engines, List<PyTorchWorker> workers)
    {
        var (warmup, reps) = Runs(s, c.Kind, c.Size, c.Batch);
        (c.Warmup, c.Reps) = (warmup, reps);
        int[] Pids() => workers.Select(w => w.Pid).Append(Environment.ProcessId).ToArray();
        Progress($"{c.Kind} {c.Size} batch {c.Batch}: {string.Join(", ", engines.Select(e => e.Key))}; {warmup} warm-up + {reps} repetitions each");
        c.LoadBefore = BenchMachine.LoadAverage();
        foreach (var e in engines)
            for (var i = 0; i < warmup; i++) { e.RunOnceMs(); Settle(s); }
        var cpu0 = CpuMonitor.Take(Pids());
        for (var rep = 0; rep < reps; rep++)
            for (var j = 0; j < engines.Count; j++)
            {
                // The order rotates, so that no engine always runs right after the same neighbour.
                var e = engines[(rep + j) % engines.Count];
                var ms = e.RunOnceMs();
                if (!c.Ms.TryGetValue(e.Key, out var list)) c.Ms[e.Key] = list = new();
                list.Add(ms);
                Settle(s);
            }
        c.ForeignCores = CpuMonitor.ForeignCores(cpu0, CpuMonitor.Take(Pids()));
        c.LoadAfter = BenchMachine.LoadAverage();
        Progress("  " + string.Join(", ", engines.Select(e => $"{e.Key} {c.MedianPerImage(e.Key):0.0}")) + " ms/img (medians)");
    }

    /// <summary>
    /// A pause between engines: OpenMP (TorchSharp, PyTorch), OpenBLAS and ORT's pool spin for a while after
    /// their last parallel region, and on 2 cores the next engine would pay for that.
    /// </summary>
    private static void Settle(Settings s)
    {
        if (s.SettleMs > 0) Thread.Sleep(s.SettleMs);
    }

    private static string OutputName(string kind) => kind switch
    {
        "classifier" => OnnxNames.Probs,
        "tokenizer" => OnnxNames.TokenIds,
        _ => OnnxNames.Classes,
    };

    /// <summary>The TorchSharp model of a case and its forward, as the former <c>perf</c> forward cases ran them.</summary>
    private static nn.Module Build(string kind, string size, out int inputSize, out Func<Tensor, Tensor> forward, out string what)
    {
        var tiny = size == "tiny";
        switch (kind)
        {
            case "classifier":
                var vit = new BeitVisionTransformer(tiny ? VitConfig.Tiny(1000) : VitConfig.Base(1000));
                (inputSize, what) = (224, "features + head + softmax");
                forward = x => vit.ForwardHead(vit.ForwardFeatures(x).Features).softmax(-1);
                return vit;
            case "tokenizer":
                var tok = new VqkdTokenizer((tiny ? TrainBench.TinyTokenizer() : VqkdConfig.Base3xClip()) with { QuantizeKmeansInit = false });
                (inputSize, what) = (224, "VQ-KD encoder + l2-normalised nearest-code lookup (token ids)");
                forward = x => tok.GetCodebookIndices(x.clamp(0, 1));
                return tok;
            case "segmenter":
                var config = tiny ? TrainBench.TinySegmentation() : SegmentationConfig.Base(150);
                var seg = new BeitSegmenter(config);
                (inputSize, what) = (config.Backbone.ImgSize, "UperNet class map at the input size");
                forward = x => seg.Predict(x);
                return seg;
            default:
                throw new ArgumentException($"unknown case {kind}");
        }
    }

    /// <summary>Our exporter through the catalogue, as serving builds its graph; what it cannot export yet is "n/a".</summary>
    private static void Ours(Settings s, string key, OnnxPrecision precision, nn.Module module, Dictionary<string, OrtForward.Session> sessions,
        Dictionary<string, string> missing, List<string> notes)
    {
        var entry = ModelCatalog.Default.EntryOf(module);
        if (entry is not { CanExportOnnx: true })
        {
            missing[key] = "n/a (not exported)";
            return;
        }
        byte[] bytes;
        var sw = Stopwatch.StartNew();
        try
        {
            var proto = entry.ExportOnnx(module, new OnnxExportOptions(Precision: precision));
            if (precision == OnnxPrecision.Int8 && QuantisedOps(proto) == 0)
            {
                missing[key] = "n/a (int8 not implemented: the exported graph has no quantised operator)";
                return;
            }
            bytes = proto.ToByteArray();
        }
        catch (NotSupportedException e)
        {
            missing[key] = $"n/a (not exported: {e.Message})";
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A bug in an exporter, not a gap: shown in bold in the table rather than ending a long run.
            missing[key] = $"**export failed**: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
            return;
        }
        var exportMs = sw.Elapsed.TotalMilliseconds;
        var session = new OrtForward.Session(bytes, s.Threads);
        sessions[key] = session;
        notes.Add($"{key}: export {exportMs / 1000:0.0} s, {bytes.Length / 1048576.0:0} MiB, session {session.CreateMs / 1000:0.0} s");
    }

    /// <summary>Nodes of a graph that compute in int8 (dynamic or static quantisation, standard or com.microsoft ops).</summary>
    public static int QuantisedOps(global::Onnx.ModelProto model) => model.Graph.Node.Count(n => n.OpType is
        "MatMulInteger" or "DynamicQuantizeLinear" or "QLinearMatMul" or "QuantizeLinear" or "DequantizeLinear"
        or "DynamicQuantizeMatMul" or "MatMulIntegerToFloat" or "QLinearConv" or "ConvInteger" or "QAttention");

    /// <summary>The naive anchor: the reference exported by the bench script, run with ORT's defaults.</summary>
    private static async Task AnchorAsync(Settings s, string kind, string size, string workDir, Dictionary<string, OrtForward.Session> sessions,
        Dictionary<string, string> missing, List<string> notes, CancellationToken ct)
    {
        var path = Path.Combine(workDir, $"anchor-{kind}-{size}.onnx");
        Progress($"{kind} {size}: torch.onnx.export of the reference (the anchor)");
        JsonElement line;
        try
        {
            line = (await new PythonReference(s.Python, s.Threads).RunAsync(ct, "export", "--case", kind, "--model", size, "--out", path)).Single();
        }
        catch (InvalidOperationException e)
        {
            missing[EngineKeys.Anchor] = $"n/a (export script failed: {e.Message.Split('\n')[0]})";
            return;
        }
        if (!line.GetProperty("ok").GetBoolean())
        {
            missing[EngineKeys.Anchor] = $"n/a (torch.onnx.export refused: {line.GetProperty("error").GetString()})";
            return;
        }
        var session = new OrtForward.Session(path, s.Threads);
        sessions[EngineKeys.Anchor] = session;
        notes.Add($"anchor: torch.onnx.export {line.GetProperty("seconds").GetDouble():0.0} s, {line.GetProperty("bytes").GetInt64() / 1048576.0:0} MiB, session {session.CreateMs / 1000:0.0} s");
        File.Delete(path);   // the session holds its own copy
    }

    internal static double Median(IReadOnlyList<double> x)
    {
        if (x.Count == 0) return double.NaN;
        var v = x.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static void Progress(string message) => Console.Error.WriteLine($"[perf {DateTime.Now:HH:mm:ss}] {message}");
}
