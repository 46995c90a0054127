using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BeitV2.Ml.Models;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>The <c>serve</c> command: set-up, the phases of each mode, and the markdown report.</summary>
public static class ServeBench
{
    /// <summary>A measured phase: its result, the CPU other processes used meanwhile (cores), and how many attempts it took.</summary>
    private sealed record Phase<T>(T Value, double Foreign, int Attempts)
    {
        public string ForeignText => (double.IsNaN(Foreign) ? "–" : Foreign.ToString("0.00", CultureInfo.InvariantCulture)) + (Attempts > 1 ? $" (attempt {Attempts})" : "");
    }

    private sealed record Sequential(LatencyStats Latency, ServerSide Server);
    private sealed record Concurrent(ThroughputResult Load, ServerSide Server);

    private sealed record ModeResult(BenchMode Mode, string Device, int ServerThreads, double FirstRequestMs,
        Phase<Sequential> Sequential, Phase<Concurrent> Concurrent)
    {
        /// <summary>Inference:Engine as the server reports it; null for a build without the setting (TorchSharp).</summary>
        public string? Engine { get; init; }
    }

    public static async Task<string> RunAsync(BenchArgs a, string commandLine, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var limit = TimeSpan.FromSeconds(a.MaxSeconds);
        var data = Path.Combine(Path.GetTempPath(), $"beitv2-bench-{Guid.NewGuid():N}"[..26]);
        Directory.CreateDirectory(data);
        Progress($"data directory {data}");
        try
        {
            var image = BenchImage.Load(a.Image);
            var config = a.Model == "tiny" ? VitConfig.Tiny(numClasses: 1000) : VitConfig.Base(numClasses: 1000);
            set_num_threads(a.EffectiveThreads);

            // 1. The model: random weights (timing does not depend on them), registered as the default classifier.
            long parameters;
            Phase<TorchForward.Timing> forward1, forward8;
            string modelId;
            var device = BeitV2.Ml.TorchRuntime.ResolveDevice(a.Device);
            var precision = BeitV2.Ml.Precision.ComputePrecisions.Parse(a.Precision);
            using (var model = new BeitVisionTransformer(config))
            {
                model.eval();
                model.to(device);
                parameters = model.parameters().Sum(p => p.numel());
                int[] Self() => new[] { Environment.ProcessId };
                Progress($"model {a.Model}: {parameters / 1e6:0.0} M parameters; torch-only forward, batch 1 × {a.ForwardRuns1}");
                forward1 = await MeasureAsync(a, Self, () => Task.FromResult(TorchForward.Measure(model, 1, a.ForwardRuns1, limit, precision)), ct);
                Progress($"  {forward1.Value.PerBatchMs.Mean:0.0} ms; batch 8 × {a.ForwardRuns8}");
                forward8 = await MeasureAsync(a, Self, () => Task.FromResult(TorchForward.Measure(model, 8, a.ForwardRuns8, limit, precision)), ct);
                Progress($"  {forward8.Value.PerBatchMs.Mean:0.0} ms; saving the model");
                var registry = new ModelRegistry(
                    new DataDirectory(Options.Create(new StorageOptions { DataDirectory = data }), new HostingEnvironment { ContentRootPath = data }),
                    Options.Create(new ModelsOptions { SeedDefaults = false }), NullLogger<ModelRegistry>.Instance);
                modelId = registry.Add(model, $"bench-vit-{a.Model}", "random initialisation (BeitV2.Bench)", makeDefault: true).Id;
            }

            // 2. Each mode on a fresh server process.
            var results = new List<ModeResult>();
            foreach (var mode in a.Modes)
            {
                ct.ThrowIfCancellationRequested();
                Progress($"mode {mode.Name}: starting BeitV2.Web");
                await using var server = await ServerProcess.StartAsync(data, mode, a.EffectiveThreads, a.Device, TimeSpan.FromSeconds(120), ct, a.Precision, a.Engine);
                using var client = new LoadClient(server.BaseAddress, image.Bytes, image.ContentType);
                var info = await client.InfoAsync(ct);
                int[] Pids() => new[] { Environment.ProcessId, server.Pid };

                var firstMs = await client.ClassifyAsync(ct);   // loads the model
                Progress($"  first request (loads the model) {firstMs:0} ms; {a.Warmup} warm-up, {a.Requests} sequential");
                await client.SequentialAsync(a.Warmup, limit, ct);
                var sequential = await MeasureAsync(a, Pids, async () =>
                {
                    var before = await client.MetricsAsync(ct);
                    var latency = LatencyStats.Of(await client.SequentialAsync(a.Requests, limit, ct));
                    return new Sequential(latency, ServerSide.Between(before, await client.MetricsAsync(ct)));
                }, ct);
                Progress($"  sequential mean {sequential.Value.Latency.Mean:0.0} ms; {a.Clients} clients × 1 warm-up, then {a.TotalConcurrent} requests");

                await client.ConcurrentAsync(a.Clients, a.Clients, limit, ct);
                var concurrent = await MeasureAsync(a, Pids, async () =>
                {
                    var before = await client.MetricsAsync(ct);
                    var load = await client.ConcurrentAsync(a.Clients, a.TotalConcurrent, limit, ct);
                    return new Concurrent(load, ServerSide.Between(before, await client.MetricsAsync(ct)));
                }, ct);
                Progress($"  {concurrent.Value.Load.RequestsPerSecond:0.00} req/s, mean batch {concurrent.Value.Server.MeanBatch:0.00}");
                results.Add(new ModeResult(mode, info.GetProperty("device").GetString() ?? "?", info.GetProperty("threads").GetInt32(),
                    firstMs, sequential, concurrent) { Engine = LoadClient.EngineOf(info) });
            }

            // 3. Peak memory with the three Base models loaded, a fresh server per engine.
            var memory = new List<ServeMemory.Result>();
            if (a.RssEngines.Count > 0)
            {
                var rssData = Path.Combine(data, "rss");
                Directory.CreateDirectory(rssData);
                Progress("peak RSS: writing the Base classifier, tokenizer and segmenter (random weights) as the default models");
                ServeMemory.Register(rssData);
                foreach (var engine in a.RssEngines)
                {
                    Progress($"peak RSS: a fresh server, engine {engine}, until its warm-up of the three models is done");
                    memory.Add(await ServeMemory.MeasureAsync(rssData, engine == "default" ? null : engine, a.EffectiveThreads, TimeSpan.FromSeconds(Math.Max(600, a.MaxSeconds)), Progress, ct));
                }
            }

            return Report(a, commandLine, image, config, parameters, modelId, forward1, forward8, results, memory, total.Elapsed);
        }
        finally
        {
            if (a.KeepData) Progress($"kept {data}");
            else
            {
                try { Directory.Delete(data, recursive: true); }
                catch (IOException e) { Progress($"could not delete {data}: {e.Message}"); }
            }
        }
    }

    /// <summary>
    /// Runs a phase after waiting for a quiet machine; while other processes used more than the
    /// threshold during it, runs it again (up to <c>--retries</c> times) and keeps the least disturbed attempt.
    /// </summary>
    private static async Task<Phase<T>> MeasureAsync<T>(BenchArgs a, Func<IReadOnlyCollection<int>> pids, Func<Task<T>> run, CancellationToken ct)
    {
        Phase<T>? best = null;
        for (var attempt = 1; attempt <= 1 + a.Retries; attempt++)
        {
            await Quiet(a, pids, ct);
            var cpu0 = CpuMonitor.Take(pids());
            var value = await run();
            var foreign = CpuMonitor.ForeignCores(cpu0, CpuMonitor.Take(pids()));
            if (best is null || foreign < best.Foreign) best = new Phase<T>(value, foreign, attempt);
            if (!(foreign > a.QuietThreshold)) break;
            if (attempt <= a.Retries) Progress($"  other processes used {foreign:0.00} cores during the phase; repeating it");
        }
        return best!;
    }

    private static Task<bool> Quiet(BenchArgs a, Func<IReadOnlyCollection<int>> pids, CancellationToken ct) =>
        CpuMonitor.WaitQuietAsync(pids, a.QuietThreshold, TimeSpan.FromSeconds(a.WaitQuietSeconds), Progress, ct);

    private static void Progress(string message) => Console.Error.WriteLine($"[bench {DateTime.Now:HH:mm:ss}] {message}");

    private static string Report(BenchArgs a, string commandLine, BenchImage image, VitConfig config, long parameters, string modelId,
        Phase<TorchForward.Timing> p1, Phase<TorchForward.Timing> p8, IReadOnlyList<ModeResult> results, IReadOnlyList<ServeMemory.Result> memory, TimeSpan elapsed)
    {
        var inv = CultureInfo.InvariantCulture;
        string F(double v, string format = "0") => double.IsNaN(v) ? "–" : v.ToString(format, inv);
        var sb = new StringBuilder();
        void L(string line = "") => sb.AppendLine(line);
        var arch = a.Model == "tiny" ? "ViT-Ti/16" : "ViT-B/16";

        L($"## BeitV2 serve benchmark — {arch}, {a.Clients} clients");
        L();
        L($"- command: `dotnet run -c Release --project BeitV2.Bench -- {commandLine}`");
        L($"- date: {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}; total bench time {elapsed.TotalSeconds:0} s");
        L($"- machine: {Environment.ProcessorCount} cores ({CpuName()}), {MemoryGiB():0} GiB RAM, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}, CUDA available: {cuda.is_available()}");
        L($"- server: BeitV2.Web child process on 127.0.0.1, device `{results.FirstOrDefault()?.Device ?? a.Device}`, torch threads {results.FirstOrDefault()?.ServerThreads ?? a.EffectiveThreads} (Ml:Threads={a.EffectiveThreads}), Inference:MaxInFlight 64, " +
          $"Inference:Engine {(a.Engine is null ? "the server's default" : $"`{a.Engine}` passed as Inference__Engine")}, " +
          $"reported by the server: {results.FirstOrDefault()?.Engine ?? "none (a build without the setting: TorchSharp)"}");
        L($"- model: BEiT v2 {arch} classifier (`{modelId}`), {config.ImgSize} px, {config.NumClasses} classes, {parameters / 1e6:0.0} M parameters, random weights");
        L($"- request: `POST /api/v1/classify?topK=5`, one image per request as a raw `{image.ContentType}` body: {image.Description}; the server decodes, resizes (shorter side 256, Pillow bicubic), centre-crops 224 and normalises");
        L();
        L($"### Torch forward only (device {a.Device}, precision {a.Precision}, process threads: {a.EffectiveThreads}; no HTTP, decoding or resizing)");
        L();
        L("| batch | runs | ms per batch (mean) | p50 | min | max | ms per image | images/s | other processes (cores) |");
        L("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var (f1, f8) = (p1.Value, p8.Value);
        foreach (var (f, p) in new[] { (f1, p1), (f8, p8) })
            L($"| {f.Batch} | {f.Runs} | {F(f.PerBatchMs.Mean, "0.0")} | {F(f.PerBatchMs.P50, "0.0")} | {F(f.PerBatchMs.Min, "0.0")} | {F(f.PerBatchMs.Max, "0.0")} | {F(f.MsPerImage, "0.0")} | {F(f.ImagesPerSecond, "0.00")} | {p.ForeignText} |");
        L();
        if (results.Count == 0)
        {
            L(Memory(memory));
            L(OtherProcessesNote);
            return sb.ToString();
        }
        L($"### One image at a time ({a.Requests} sequential requests after {a.Warmup} warm-up; ms)");
        L();
        L("| mode | MaxBatch | MaxWaitMs | first request (loads model) | mean | p50 | p95 | p99 | server forward | rest (queue + HTTP + decode/resize) | other processes (cores) |");
        L("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var s = r.Sequential.Value.Latency;
            var seqServer = r.Sequential.Value.Server;
            L($"| {r.Mode.Name} | {r.Mode.MaxBatch} | {r.Mode.MaxWaitMs} | {F(r.FirstRequestMs)} | {F(s.Mean, "0.0")} | {F(s.P50, "0.0")} | {F(s.P95, "0.0")} | {F(s.P99, "0.0")} | {F(seqServer.MeanForwardMs, "0.0")} | {F(s.Mean - seqServer.MeanForwardMs, "0.0")} | {r.Sequential.ForeignText} |");
        }
        L();
        L($"### {a.Clients} concurrent clients ({a.TotalConcurrent} single-image requests in total, each client sends its next request when the previous one answers)");
        L();
        var baseline = results.FirstOrDefault(r => r.Mode.MaxBatch == 1)?.Concurrent.Value.Load.RequestsPerSecond;
        L("| mode | completed | wall s | requests/s (= images/s) | vs unbatched | latency mean ms | p95 ms | mean batch | batches by size | forward per batch ms | forward per image ms | queue wait mean ms | other processes (cores) |");
        L("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var c = r.Concurrent.Value.Load;
            var srv = r.Concurrent.Value.Server;
            var done = c.Completed + (c.Failed > 0 ? $" ({c.Failed} failed)" : "") + (c.HitTimeLimit ? " (time limit)" : "");
            var ratio = baseline is > 0 ? $"{c.RequestsPerSecond / baseline.Value:0.00}×" : "–";
            L($"| {r.Mode.Name} | {done} | {F(c.WallSeconds, "0.0")} | {F(c.RequestsPerSecond, "0.00")} | {ratio} | {F(c.Latency.Mean)} | {F(c.Latency.P95)} | {F(srv.MeanBatch, "0.00")} | {srv.Histogram} | {F(srv.MeanForwardMs)} | {F(srv.MeanForwardMs / srv.MeanBatch, "0.0")} | {F(srv.MeanQueueMs)} | {r.Concurrent.ForeignText} |");
        }
        L();
        L($"Torch-only reference: batch 1 {F(f1.PerBatchMs.Mean, "0.0")} ms ({F(f1.ImagesPerSecond, "0.00")} images/s), batch 8 {F(f8.PerBatchMs.Mean, "0.0")} ms = {F(f8.MsPerImage, "0.0")} ms per image ({F(f8.ImagesPerSecond, "0.00")} images/s).");
        L(OtherProcessesNote);
        L(Memory(memory));
        L(Targets(a, results, memory));
        L("Batch sizes come from the server's `beitv2_inference_batch_size` histogram (buckets 1, 2, 3, 4, 6, 8), forward and queue times from `beitv2_inference_compute_seconds` / `beitv2_inference_queue_seconds`, each the difference of two `/metrics` scrapes around the phase.");
        return sb.ToString();
    }

    private static string Memory(IReadOnlyList<ServeMemory.Result> memory)
    {
        if (memory.Count == 0) return "";
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine("### Peak memory: a fresh server with the Base classifier, tokenizer and segmenter loaded");
        sb.AppendLine();
        sb.AppendLine("The three are the server's default models, so its start-up warm-up loads each and runs one batch of Inference:MaxBatch (8) blank images through it; VmHWM/VmRSS from /proc/PID/status once the log shows the three warm-ups.");
        sb.AppendLine();
        sb.AppendLine("| Inference:Engine | peak RSS (VmHWM) | RSS after warm-up | warmed up | seconds |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var m in memory)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {m.Engine} | {m.PeakMiB:0} MiB | {m.RssBytes / 1048576.0:0} MiB | {m.WarmedUp} of 3 | {m.Seconds:0} |"));
        foreach (var m in memory.Where(m => m.WarmedUp < 3))
            sb.AppendLine($"\n{m.Engine}: not every model warmed up, so its peak is not comparable: {string.Join(" / ", m.WarmUpLines)}");
        return sb.ToString();
    }

    /// <summary>Issue 17's serving targets that this verb measures, each met or missed with its number.</summary>
    private static string Targets(BenchArgs a, IReadOnlyList<ModeResult> results, IReadOnlyList<ServeMemory.Result> memory)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        string Mark(bool ok) => ok ? "met" : "**missed**";
        sb.AppendLine();
        sb.AppendLine("### Targets");
        sb.AppendLine();
        var unb = results.FirstOrDefault(r => r.Mode.MaxBatch == 1);
        if (unb is not null)
        {
            // The server's own forward time (compute histogram) is the bare forward of whichever engine serves,
            // so the overhead (queue, HTTP, decoding, resizing, JSON) needs no second engine in this process.
            var s = unb.Sequential.Value;
            var overhead = s.Latency.Mean / s.Server.MeanForwardMs - 1;
            sb.AppendLine(string.Create(inv, $"- {(a.Model == "base" ? "Base" : "tiny (the target is for Base)")} HTTP overhead for one image: {100 * overhead:0} % ({s.Latency.Mean:0.0} ms per request against {s.Server.MeanForwardMs:0.0} ms of server forward, unbatched, {a.Requests} sequential requests; target < 10 %): {Mark(overhead < 0.10)}"));
            foreach (var r in results.Where(r => r.Mode.MaxBatch > 1))
            {
                var gain = r.Concurrent.Value.Load.RequestsPerSecond / unb.Concurrent.Value.Load.RequestsPerSecond;
                sb.AppendLine(string.Create(inv, $"- {a.Clients} clients, {r.Mode.Name} ÷ unbatched: {gain:0.00}× (target ≥ 1.3× with 8 clients{(a.Clients == 8 ? "" : "; this run had " + a.Clients)}): {(a.Clients == 8 ? Mark(gain >= 1.3) : "not comparable")}"));
            }
        }
        var torch = memory.FirstOrDefault(m => m.Engine == "torch" && m.WarmedUp == 3);
        var onnx = memory.FirstOrDefault(m => m.Engine == "onnx" && m.WarmedUp == 3);
        if (torch is not null && onnx is not null)
            sb.AppendLine(string.Create(inv, $"- Peak RSS with the three Base models, onnx engine {onnx.PeakMiB:0} MiB ≤ torch engine (today's) {torch.PeakMiB:0} MiB: {Mark(onnx.PeakBytes <= torch.PeakBytes)}"));
        else if (memory.Count > 0)
            sb.AppendLine("- Peak RSS onnx ≤ torch: needs `--rss torch,onnx` with all three models warmed up on both");
        return sb.ToString();
    }

    private const string OtherProcessesNote = "\"Other processes\" is the CPU (in cores, averaged over the phase) used by processes other than the bench and its server, from /proc/stat; figures measured while it is well above 0 are slowed by that load. With --retries, a phase during which it exceeded 0.2 cores was run again and the least disturbed attempt is shown.";

    internal static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException) { return RuntimeInformation.ProcessArchitecture.ToString(); }
    }

    private static double MemoryGiB() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024);
}
