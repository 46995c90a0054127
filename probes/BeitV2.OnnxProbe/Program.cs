using System.Diagnostics;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using TorchSharp.PyBridge;
using BeitV2.OnnxProbe;
using static TorchSharp.torch;

// Verbs: parity [fixtureDir] | speed [tiny|base] [runs] [threads]
var verb = args.Length > 0 ? args[0] : "parity";
var outDir = Environment.GetEnvironmentVariable("PROBE_OUT") ?? Path.Combine(Path.GetTempPath(), "onnx-probe");
Directory.CreateDirectory(outDir);
var modes = (Environment.GetEnvironmentVariable("PROBE_MODES") ?? "Standard,Standard+fold,Standard+fold+sln,MsAttention,MsAttention+fold+sln,MsMha")
    .Split(',').ToArray();

if (verb == "parity") Parity(args.Length > 1 ? args[1]
    : Environment.GetEnvironmentVariable("BEITV2_FIXTURES") is { Length: > 0 } env ? env : Path.Combine("..", "shared", "fixtures", "reference"));
else if (verb == "speed") Speed(args.Length > 1 ? args[1] : "base", args.Length > 2 ? int.Parse(args[2]) : 5, args.Length > 3 ? int.Parse(args[3]) : 2);
else if (verb == "rss") Rss(args.Length > 1 ? args[1] : "Standard", args.Length > 2 && args[2] == "noprepack", args.Length > 3 && args[3] == "noarena");
else throw new ArgumentException($"unknown verb {verb}");

// Resident memory of one Base classifier session, step by step (one process per configuration).
void Rss(string variant, bool noPrepack, bool noArena)
{
    long Mb() { GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect(); return Environment.WorkingSet / 1_000_000; }
    var steps = new List<string> { $"start {Mb()}" };
    var model = new BeitVisionTransformer(VitConfig.Base());
    model.eval();
    steps.Add($"torch model {Mb()}");
    var proto = VitOnnxExporter.Export(model, variant);
    steps.Add($"+proto {Mb()}");
    var bytes = proto.ToByteArray();
    proto = null;
    steps.Add($"bytes only {Mb()}");
    model.Dispose();
    steps.Add($"torch model disposed {Mb()}");
    var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 2, InterOpNumThreads = 1,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, EnableCpuMemArena = !noArena };
    if (noPrepack) so.AddSessionConfigEntry("session.disable_prepacking", "1");
    using var session = new InferenceSession(bytes, so);
    steps.Add($"+session {Mb()}");
    bytes = null;
    steps.Add($"bytes dropped {Mb()}");
    foreach (var batch in new[] { 1, 8 })
    {
        var data = new float[batch * 3 * 224 * 224];
        var t0 = Stopwatch.GetTimestamp();
        _ = RunOrt(session, data, new long[] { batch, 3, 224, 224 }, new[] { "logits" });
        var ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        t0 = Stopwatch.GetTimestamp();
        _ = RunOrt(session, data, new long[] { batch, 3, 224, 224 }, new[] { "logits" });
        steps.Add($"after batch {batch} {Mb()} ({ms:F0}, {Stopwatch.GetElapsedTime(t0).TotalMilliseconds:F0} ms)");
    }
    var peak = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM")).Split(':')[1].Trim();
    Console.WriteLine($"rss {variant} prepack={(noPrepack ? "off" : "on")} arena={(noArena ? "off" : "on")} (MB): {string.Join(" | ", steps)} | peak {peak}");
}

InferenceSession Session(ModelProto model, string tag, int threads, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_ALL)
{
    var so = new SessionOptions
    {
        GraphOptimizationLevel = level, IntraOpNumThreads = threads, InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, OptimizedModelFilePath = Path.Combine(outDir, $"{tag}.optimized.onnx"),
    };
    if (Environment.GetEnvironmentVariable("PROBE_SPIN") == "0") so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
    return new InferenceSession(model.ToByteArray(), so);
}

string OpCounts(string optimizedPath)
{
    var m = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimizedPath));
    return string.Join(" ", m.Graph.Node.GroupBy(n => (n.Domain == "" ? "" : n.Domain + ":") + n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key}×{g.Count()}"));
}

Dictionary<string, float[]> RunOrt(InferenceSession s, float[] images, long[] shape, IEnumerable<string> outputs)
{
    using var input = OrtValue.CreateTensorValueFromMemory(images, shape);
    var names = outputs.ToArray();
    using var results = s.Run(new RunOptions(), new[] { "images" }, new[] { input }, names);
    return names.Zip(results).ToDictionary(p => p.First, p => p.Second.GetTensorDataAsSpan<float>().ToArray());
}

void Parity(string dir)
{
    var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "vit_cls.json"))).RootElement;
    var config = ModelJson.Deserialize<VitConfig>(json.GetProperty("config"), "vit_cls");
    using var model = new BeitVisionTransformer(config);
    VitCheckpoint.Load(model, Path.Combine(dir, "vit_cls.weights.safetensors"));
    model.eval();
    var io = Safetensors.LoadStateDict(Path.Combine(dir, "vit_cls.io.safetensors"));
    var images = io["images"];
    var imgData = images.contiguous().data<float>().ToArray();
    var outputs = json.GetProperty("io").EnumerateArray().Where(e => e.GetProperty("role").GetString() != "input")
        .Select(e => e.GetProperty("name").GetString()!).ToList();

    // TorchSharp reference, as the parity runner computes it.
    var torchOut = new Dictionary<string, float[]>();
    using (inference_mode())
    using (var o = model.ForwardFeatures(images, keepHidden: true))
    {
        using var logits = model.ForwardHead(o.Features);
        torchOut["logits"] = logits.contiguous().data<float>().ToArray();
        torchOut["features"] = o.Features.contiguous().data<float>().ToArray();
        for (var i = 0; i < o.Hidden.Count; i++) torchOut[$"hidden_{i}"] = o.Hidden[i].contiguous().data<float>().ToArray();
    }
    Console.WriteLine($"vit_cls: {string.Join(", ", outputs)}; images [{string.Join(",", images.shape)}]");
    Report("torchsharp", torchOut);
    Dictionary<string, float[]>? firstOrt = null;
    foreach (var mode in modes)
    {
        var proto = VitOnnxExporter.Export(model, mode, hiddenOutputs: true);
        File.WriteAllBytes(Path.Combine(outDir, $"vit_cls.{mode}.onnx"), proto.ToByteArray());
        foreach (var level in new[] { GraphOptimizationLevel.ORT_ENABLE_ALL, GraphOptimizationLevel.ORT_DISABLE_ALL })
        {
            try
            {
                using var s = Session(proto, $"vit_cls.{mode}.{level}", 2, level);
                var ort = RunOrt(s, imgData, images.shape, outputs);
                Report($"ort {mode} {level}", ort);
                // Dynamic batch: the first image alone must give the first rows.
                var per = imgData.Length / (int)images.shape[0];
                var one = RunOrt(s, imgData[..per], new[] { 1L }.Concat(images.shape[1..]).ToArray(), new[] { "logits" });
                var full = ort["logits"];
                var d = one["logits"].Select((v, i) => Math.Abs(v - full[i])).Max();
                Console.WriteLine($"    batch-1 vs batch-2 logits row 0: max |diff| {d:E2}");
                var vsTorch = ort["logits"].Select((v, i) => Math.Abs(v - torchOut["logits"][i])).Max();
                Console.WriteLine($"    vs TorchSharp logits: max |diff| {vsTorch:E2}");
                if (firstOrt is null) firstOrt = ort;
                else Console.WriteLine($"    vs first ORT run, hidden_0: max |diff| {ort["hidden_0"].Select((v, i) => Math.Abs(v - firstOrt["hidden_0"][i])).Max():E2}");
            }
            catch (Exception e) { Console.WriteLine($"  ort {mode} {level}: FAILED {e.GetType().Name}: {e.Message.Split('\n')[0]}"); }
        }
    }

    void Report(string what, Dictionary<string, float[]> got)
    {
        var allOk = true;
        var parts = new List<string>();
        foreach (var name in outputs)
        {
            var refT = io[name].to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
            var g = got[name];
            var maxRef = refT.Max(Math.Abs);
            double atol = 1e-5 * Math.Max(1, maxRef), rtol = 1e-5, worst = 0, maxDiff = 0;
            for (var i = 0; i < refT.Length; i++)
            {
                var diff = Math.Abs(g[i] - refT[i]);
                maxDiff = Math.Max(maxDiff, diff);
                worst = Math.Max(worst, diff / (atol + rtol * Math.Abs(refT[i])));
            }
            allOk &= worst <= 1;
            parts.Add($"{name}: max|d| {maxDiff:E2} ({worst:F3} of tol)");
        }
        Console.WriteLine($"  {what}: {(allOk ? "PASS" : "FAIL")} strict  | {string.Join("; ", parts)}");
    }
}

void Speed(string size, int runs, int threads)
{
    set_num_threads(threads);
    var config = size == "tiny" ? VitConfig.Tiny() : VitConfig.Base();
    manual_seed(0);
    using var model = new BeitVisionTransformer(config);
    model.eval();
    long Rss() { GC.Collect(); GC.WaitForPendingFinalizers(); return Environment.WorkingSet / 1_000_000; }
    Console.WriteLine($"RSS with the TorchSharp model: {Rss()} MB");
    var sessions = new List<(string Name, InferenceSession S)>();
    foreach (var mode in modes)
    {
        var sw = Stopwatch.StartNew();
        var proto = VitOnnxExporter.Export(model, mode);
        var exportMs = sw.ElapsedMilliseconds;
        var bytes = proto.CalculateSize();
        sw.Restart();
        try
        {
            var s = Session(proto, $"{size}.{mode}", threads);
            proto = null;
            Console.WriteLine($"{mode}: export {exportMs} ms, {bytes / 1e6:F1} MB, session {sw.ElapsedMilliseconds} ms, RSS now {Rss()} MB; optimized: {OpCounts(Path.Combine(outDir, $"{size}.{mode}.optimized.onnx"))}");
            sessions.Add((mode.ToString(), s));
        }
        catch (Exception e) { Console.WriteLine($"{mode}: session FAILED {e.Message.Split('\n')[0]}"); }
    }
    // The naive anchor: the PyTorch reference exported by torch.onnx.export (probes/anchor/export_anchor.py), default ORT options otherwise as ours.
    if (Environment.GetEnvironmentVariable("PROBE_ANCHOR") is { Length: > 0 } anchor)
    {
        var sw = Stopwatch.StartNew();
        var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads, InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, OptimizedModelFilePath = Path.Combine(outDir, $"{size}.anchor.optimized.onnx") };
        var s = new InferenceSession(anchor, so);
        Console.WriteLine($"anchor: session {sw.ElapsedMilliseconds} ms; optimized: {OpCounts(Path.Combine(outDir, $"{size}.anchor.optimized.onnx"))}");
        sessions.Add(("anchor", s));
    }
    var rng = new Random(1);
    foreach (var batch in new[] { 1, 8 })
    {
        var shape = new long[] { batch, 3, config.ImgSize, config.ImgSize };
        var data = Enumerable.Range(0, (int)(shape.Aggregate(1L, (a, b) => a * b))).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray();
        using var input = tensor(data, shape);
        var times = new Dictionary<string, List<double>> { ["torch"] = new() };
        foreach (var s in sessions) times[s.Name] = new();
        var load0 = File.ReadAllText("/proc/loadavg").Trim();
        float[] torchLogits = Array.Empty<float>();
        var maxDiff = new Dictionary<string, double>();
        for (var r = -1; r < runs; r++)   // r = -1: warm-up
        {
            var t0 = Stopwatch.GetTimestamp();
            using (inference_mode())
            using (var logits = model.forward(input)) _ = logits.data<float>().ToArray();
            if (r == -1)
                using (inference_mode())
                using (var o = model.ForwardFeatures(input)) torchLogits = o.Features.contiguous().data<float>().ToArray();
            if (r >= 0) times["torch"].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            foreach (var (name, s) in sessions)
            {
                t0 = Stopwatch.GetTimestamp();
                _ = RunOrt(s, data, shape, new[] { "logits" });
                if (r >= 0) times[name].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                if (r == -1 && name != "anchor")
                    maxDiff[name] = RunOrt(s, data, shape, new[] { "features" })["features"].Select((v, i) => Math.Abs(v - torchLogits[i])).Max();
            }
        }
        var load1 = File.ReadAllText("/proc/loadavg").Trim();
        Console.WriteLine($"{size} batch {batch}, {runs} runs alternating, {threads} threads; loadavg before [{load0}] after [{load1}]");
        Console.WriteLine($"  features vs TorchSharp (max|torch| {torchLogits.Max(Math.Abs):F3}): " + string.Join("; ", maxDiff.Select(p => $"{p.Key} {p.Value:E2}")));
        foreach (var (name, list) in times)
        {
            var sorted = list.Order().ToArray();
            Console.WriteLine($"  {name,-12} median {sorted[sorted.Length / 2] / batch,8:F1} ms/image  (per batch: min {sorted[0]:F0}, median {sorted[sorted.Length / 2]:F0}, max {sorted[^1]:F0} ms)");
        }
    }
    foreach (var s in sessions) s.S.Dispose();
}
