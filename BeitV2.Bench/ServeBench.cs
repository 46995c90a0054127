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
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>The <c>serve</c> command: set-up, the phases of each mode, and the markdown report.</summary>
public static class ServeBench
{
    private sealed record ModeResult(BenchMode Mode, string Device, int ServerThreads, double FirstRequestMs,
        LatencyStats Sequential, ServerSide SequentialServer, double SequentialForeign,
        ThroughputResult Concurrent, ServerSide ConcurrentServer, double ConcurrentForeign);

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
            TorchForward.Timing forward1, forward8;
            string modelId;
            using (var model = new BeitVisionTransformer(config))
            {
                model.eval();
                parameters = model.parameters().Sum(p => p.numel());
                await Quiet(a, () => new[] { Environment.ProcessId }, ct);
                Progress($"model {a.Model}: {parameters / 1e6:0.0} M parameters; torch-only forward, batch 1 × {a.ForwardRuns1}");
                forward1 = TorchForward.Measure(model, 1, a.ForwardRuns1, limit);
                Progress($"  {forward1.PerBatchMs.Mean:0.0} ms; batch 8 × {a.ForwardRuns8}");
                await Quiet(a, () => new[] { Environment.ProcessId }, ct);
                forward8 = TorchForward.Measure(model, 8, a.ForwardRuns8, limit);
                Progress($"  {forward8.PerBatchMs.Mean:0.0} ms; saving the model");
                var registry = new ModelRegistry(
                    new DataDirectory(Options.Create(new StorageOptions { DataDirectory = data }), new HostingEnvironment { ContentRootPath = data }),
                    NullLogger<ModelRegistry>.Instance);
                modelId = registry.Add(model, $"bench-vit-{a.Model}", "random initialisation (BeitV2.Bench)", makeDefault: true).Id;
            }

            // 2. Each mode on a fresh server process.
            var results = new List<ModeResult>();
            foreach (var mode in a.Modes)
            {
                ct.ThrowIfCancellationRequested();
                Progress($"mode {mode.Name}: starting BeitV2.Web");
                await using var server = await ServerProcess.StartAsync(data, mode, a.EffectiveThreads, a.Device, TimeSpan.FromSeconds(120), ct);
                using var client = new LoadClient(server.BaseAddress, image.Bytes, image.ContentType);
                var info = await client.InfoAsync(ct);

                var firstMs = await client.ClassifyAsync(ct);   // loads the model
                Progress($"  first request (loads the model) {firstMs:0} ms; {a.Warmup} warm-up, {a.Requests} sequential");
                await client.SequentialAsync(a.Warmup, limit, ct);
                int[] Pids() => new[] { Environment.ProcessId, server.Pid };
                await Quiet(a, Pids, ct);
                var before = await client.MetricsAsync(ct);
                var cpu0 = CpuMonitor.Take(Pids());
                var sequential = LatencyStats.Of(await client.SequentialAsync(a.Requests, limit, ct));
                var seqForeign = CpuMonitor.ForeignCores(cpu0, CpuMonitor.Take(Pids()));
                var seqServer = ServerSide.Between(before, await client.MetricsAsync(ct));
                Progress($"  sequential mean {sequential.Mean:0.0} ms; {a.Clients} clients × 1 warm-up, then {a.TotalConcurrent} requests");

                await client.ConcurrentAsync(a.Clients, a.Clients, limit, ct);
                await Quiet(a, Pids, ct);
                before = await client.MetricsAsync(ct);
                cpu0 = CpuMonitor.Take(Pids());
                var concurrent = await client.ConcurrentAsync(a.Clients, a.TotalConcurrent, limit, ct);
                var conForeign = CpuMonitor.ForeignCores(cpu0, CpuMonitor.Take(Pids()));
                var conServer = ServerSide.Between(before, await client.MetricsAsync(ct));
                Progress($"  {concurrent.RequestsPerSecond:0.00} req/s, mean batch {conServer.MeanBatch:0.00}");
                results.Add(new ModeResult(mode, info.GetProperty("device").GetString() ?? "?", info.GetProperty("threads").GetInt32(),
                    firstMs, sequential, seqServer, seqForeign, concurrent, conServer, conForeign));
            }

            return Report(a, commandLine, image, config, parameters, modelId, forward1, forward8, results, total.Elapsed);
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

    private static Task<bool> Quiet(BenchArgs a, Func<IReadOnlyCollection<int>> pids, CancellationToken ct) =>
        CpuMonitor.WaitQuietAsync(pids, a.QuietThreshold, TimeSpan.FromSeconds(a.WaitQuietSeconds), Progress, ct);

    private static void Progress(string message) => Console.Error.WriteLine($"[bench {DateTime.Now:HH:mm:ss}] {message}");

    private static string Report(BenchArgs a, string commandLine, BenchImage image, VitConfig config, long parameters, string modelId,
        TorchForward.Timing f1, TorchForward.Timing f8, IReadOnlyList<ModeResult> results, TimeSpan elapsed)
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
        L($"- server: BeitV2.Web child process on 127.0.0.1, device `{results.FirstOrDefault()?.Device ?? a.Device}`, torch threads {results.FirstOrDefault()?.ServerThreads ?? a.EffectiveThreads} (Ml:Threads={a.EffectiveThreads}), Inference:MaxInFlight 64");
        L($"- model: BEiT v2 {arch} classifier (`{modelId}`), {config.ImgSize} px, {config.NumClasses} classes, {parameters / 1e6:0.0} M parameters, random weights");
        L($"- request: `POST /api/v1/classify?topK=5`, one image per request as a raw `{image.ContentType}` body: {image.Description}; the server decodes, resizes (shorter side 256, Pillow bicubic), centre-crops 224 and normalises");
        L();
        L($"### Torch forward only (same process threads: {a.EffectiveThreads}; no HTTP, decoding or resizing)");
        L();
        L("| batch | runs | ms per batch (mean) | p50 | min | max | ms per image | images/s | other processes (cores) |");
        L("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var f in new[] { f1, f8 })
            L($"| {f.Batch} | {f.Runs} | {F(f.PerBatchMs.Mean, "0.0")} | {F(f.PerBatchMs.P50, "0.0")} | {F(f.PerBatchMs.Min, "0.0")} | {F(f.PerBatchMs.Max, "0.0")} | {F(f.MsPerImage, "0.0")} | {F(f.ImagesPerSecond, "0.00")} | {F(f.ForeignCores, "0.00")} |");
        L();
        if (results.Count == 0)
        {
            L(OtherProcessesNote);
            return sb.ToString();
        }
        L($"### One image at a time ({a.Requests} sequential requests after {a.Warmup} warm-up; ms)");
        L();
        L("| mode | MaxBatch | MaxWaitMs | first request (loads model) | mean | p50 | p95 | p99 | server forward | rest (queue + HTTP + decode/resize) | other processes (cores) |");
        L("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var s = r.Sequential;
            L($"| {r.Mode.Name} | {r.Mode.MaxBatch} | {r.Mode.MaxWaitMs} | {F(r.FirstRequestMs)} | {F(s.Mean, "0.0")} | {F(s.P50, "0.0")} | {F(s.P95, "0.0")} | {F(s.P99, "0.0")} | {F(r.SequentialServer.MeanForwardMs, "0.0")} | {F(s.Mean - r.SequentialServer.MeanForwardMs, "0.0")} | {F(r.SequentialForeign, "0.00")} |");
        }
        L();
        L($"### {a.Clients} concurrent clients ({a.TotalConcurrent} single-image requests in total, each client sends its next request when the previous one answers)");
        L();
        var baseline = results.FirstOrDefault(r => r.Mode.MaxBatch == 1)?.Concurrent.RequestsPerSecond;
        L("| mode | completed | wall s | requests/s (= images/s) | vs unbatched | latency mean ms | p95 ms | mean batch | batches by size | forward per batch ms | forward per image ms | queue wait mean ms | other processes (cores) |");
        L("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var c = r.Concurrent;
            var srv = r.ConcurrentServer;
            var done = c.Completed + (c.Failed > 0 ? $" ({c.Failed} failed)" : "") + (c.HitTimeLimit ? " (time limit)" : "");
            var ratio = baseline is > 0 ? $"{c.RequestsPerSecond / baseline.Value:0.00}×" : "–";
            L($"| {r.Mode.Name} | {done} | {F(c.WallSeconds, "0.0")} | {F(c.RequestsPerSecond, "0.00")} | {ratio} | {F(c.Latency.Mean)} | {F(c.Latency.P95)} | {F(srv.MeanBatch, "0.00")} | {srv.Histogram} | {F(srv.MeanForwardMs)} | {F(srv.MeanForwardMs / srv.MeanBatch, "0.0")} | {F(srv.MeanQueueMs)} | {F(r.ConcurrentForeign, "0.00")} |");
        }
        L();
        L($"Torch-only reference: batch 1 {F(f1.PerBatchMs.Mean, "0.0")} ms ({F(f1.ImagesPerSecond, "0.00")} images/s), batch 8 {F(f8.PerBatchMs.Mean, "0.0")} ms = {F(f8.MsPerImage, "0.0")} ms per image ({F(f8.ImagesPerSecond, "0.00")} images/s).");
        L(OtherProcessesNote);
        L("Batch sizes come from the server's `beitv2_inference_batch_size` histogram (buckets 1, 2, 3, 4, 6, 8), forward and queue times from `beitv2_inference_compute_seconds` / `beitv2_inference_queue_seconds`, each the difference of two `/metrics` scrapes around the phase.");
        return sb.ToString();
    }

    private const string OtherProcessesNote = "\"Other processes\" is the CPU (in cores, averaged over the phase) used by processes other than the bench and its server, from /proc/stat; figures measured while it is well above 0 are slowed by that load.";

    private static string CpuName()
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
