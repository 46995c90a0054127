using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using BeitV2.Ml;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>
/// The <c>perf</c> command: the engine comparison of issue 17 (<see cref="EngineBench"/>: the naive ONNX Runtime
/// anchor, our ONNX graphs, TorchSharp and PyTorch eager taking turns on the same cases), the matmul rate and
/// training steps against PyTorch, then the real server over HTTP (one image, 8 and 32 clients, batched and
/// unbatched) and peak memory with Base loaded; a markdown report with ratios and the targets.
/// </summary>
public static class PerfBench
{
    /// <summary>One model case on both sides: per-round values (ms per image, images/s or GFLOP/s).</summary>
    private sealed class Case(string name, string model, int batch, string unit, bool higherIsBetter, string detail)
    {
        public string Name { get; } = name;
        public string Model { get; } = model;
        public int Batch { get; } = batch;
        public string Unit { get; } = unit;
        public bool HigherIsBetter { get; } = higherIsBetter;
        public string Detail { get; set; } = detail;
        public List<double> Cs { get; } = new();
        public List<double> Py { get; } = new();
        public double CsMedian => Median(Cs);
        public double PyMedian => Median(Py);
        /// <summary>How many times faster BeitV2 is than PyTorch (&gt; 1: BeitV2 is faster).</summary>
        public double SpeedUp => HigherIsBetter ? CsMedian / PyMedian : PyMedian / CsMedian;
    }

    /// <summary>
    /// The server cases of one preset. Both servers (unbatched, batched) run side by side and the phases
    /// alternate, and every one-image request is paired with a bare forward in this process right after it,
    /// so that the drift of a shared VM (±15 % over minutes) hits both sides of each ratio alike.
    /// </summary>
    private sealed class HttpResult(string model)
    {
        public string Model { get; } = model;
        /// <summary>One-image latency on the unbatched server, and the bare batch-1 forward measured right after each.</summary>
        public List<double> Http { get; } = new();
        public List<double> Bare { get; } = new();
        public List<double> Overhead { get; } = new();
        public double ServerForwardMs { get; set; }
        /// <summary>Which engine ran the bare forward.</summary>
        public string BareEngine { get; set; } = "TorchSharp";
        /// <summary>One-image latency on the batched server (waits MaxWaitMs for company).</summary>
        public List<double> BatchedHttp { get; } = new();
        /// <summary>(batched?, clients) → per-round images/s and mean batch.</summary>
        public Dictionary<(bool Batched, int Clients), List<(double Rate, double MeanBatch)>> Load { get; } = new();
        public Dictionary<int, List<double>> Gain { get; } = new();
        public long PeakUnbatched { get; set; }
        public long PeakBatched { get; set; }
    }

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static async Task<string> RunAsync(PerfArgs a, string commandLine, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        var threads = a.EffectiveThreads;
        TorchRuntime.ConfigureThreads(threads);
        var py = a.NoPython ? null : new PythonReference(a.Python, threads);
        var cases = new List<Case>();
        Case Get(string name, string model, int batch, string unit, bool higher, string detail = "")
        {
            var c = cases.FirstOrDefault(x => x.Name == name && x.Model == model && x.Batch == batch);
            if (c is null) cases.Add(c = new Case(name, model, batch, unit, higher, detail));
            return c;
        }

        string pyInfo = "not run (--no-python)", verifyNote = "";
        BenchMachine.Blas blas = BenchMachine.FromLinkerCache();
        if (py is not null)
        {
            var info = (await py.RunAsync(ct, "info")).Single();
            blas = BenchMachine.Blas.FromPython(info);
            pyInfo = $"PyTorch {info.GetProperty("torch").GetString()} (Debian python3-torch, Python {info.GetProperty("python").GetString()}), " +
                     $"BLAS {blas} (libblas.so.3 alternative: `{info.GetProperty("blas").GetString()}`), torch threads {info.GetProperty("threads").GetInt32()}, " +
                     $"interop {info.GetProperty("interop").GetInt32()}, OPENBLAS_NUM_THREADS={info.GetProperty("openblas_threads").GetString()}, " +
                     $"OMP_WAIT_POLICY={info.GetProperty("omp_wait_policy").GetString()}";
            var fixtures = a.Fixtures ?? FindFixtures();
            if (fixtures is null) verifyNote = "the official fixtures were not found (--fixtures), so the PyTorch models were not checked against them";
            else
            {
                Progress($"checking the PyTorch models against the official fixtures in {fixtures}");
                var checks = await py.RunAsync(ct, "verify", "--fixtures", fixtures);
                var worst = checks.Where(c => c.GetProperty("max_abs_diff").ValueKind == JsonValueKind.Number).Max(c => c.GetProperty("max_abs_diff").GetDouble());
                verifyNote = $"before timing, the PyTorch models reproduced the official fixtures ({string.Join(", ", checks.Select(c => c.GetProperty("fixture").GetString()).Distinct())}: " +
                             $"{checks.Count} outputs, token ids exact, largest float difference {worst:0.0e0}, all within the strict tolerance)";
            }
        }
        var refusal = BenchMachine.Refusal(blas);
        if (refusal is not null) Progress("libblas.so.3 is the netlib reference BLAS: no ratio against PyTorch will be printed (apt-get install " + BenchMachine.OpenBlasPackage + ")");

        // 1. Matmul rate, C# then PyTorch in each round.
        for (var round = 1; round <= a.Rounds && a.Has("matmul"); round++)
        {
            Progress($"round {round}: matmul, TorchSharp");
            foreach (var (name, m, k, n) in MatmulShapes)
                Get($"matmul {name}", "-", 1, "GFLOP/s", true, $"{m}×{k} · {k}×{n}, fp32, best of 15").Cs.Add(Matmul(m, k, n, a.Quick));
            if (py is null) continue;
            Progress($"round {round}: matmul, PyTorch");
            foreach (var j in await py.RunAsync(ct, "run", "--cases", "matmul", a.Quick ? "--quick" : "--seed=0"))
                Get($"matmul {j.GetProperty("case").GetString()!["matmul/".Length..]}", "-", 1, "GFLOP/s", true).Py.Add(j.GetProperty("gflops").GetDouble());
        }

        // 1b. The engines, taking turns per repetition.
        var engineCases = a.Has("engines") ? await EngineBench.RunAsync(a.EngineSettings, ct) : new List<EngineBench.Case>();

        // 2. Training steps.
        if (a.Has("train"))
            foreach (var model in a.Models)
            {
                var targs = new TrainArgs { Threads = threads, Steps = a.Quick ? 1 : null, Warmup = a.Quick ? 1 : null };
                foreach (var (stage, name) in new[] { ("pretrain", "train MIM step"), ("tokenizer", "train VQ-KD step") })
                {
                    Progress($"training {name} {model}, TorchSharp");
                    var r = TrainBench.Time(targs, stage, model, ct);
                    if (r.Error is not null) throw new InvalidOperationException($"{stage}/{model}: {r.Error}");
                    Get(name, model, r.Batch, "img/s", true, stage == "pretrain"
                        ? "tokenizer labels + forward + 2 CE losses + backward + clip 3.0 + AdamW"
                        : "CLIP teacher targets + forward + cosine/commit loss + backward + AdamW + EMA codebook").Cs.Add(r.ImagesPerSecond);
                }
                if (py is null) continue;
                Progress($"training {model}, PyTorch");
                foreach (var j in await py.RunAsync(ct, "run", "--cases", "train", "--model", model, a.Quick ? "--quick" : "--seed=0"))
                    Get(j.GetProperty("case").GetString() == "train/mim" ? "train MIM step" : "train VQ-KD step", model, j.GetProperty("batch").GetInt32(), "img/s", true)
                        .Py.Add(j.GetProperty("images_per_second").GetDouble());
            }

        // 3. The server over HTTP.
        var http = new List<HttpResult>();
        if (a.Has("http"))
            foreach (var model in a.Models)
                http.Add(await HttpAsync(a, model, ct));

        // 4. Peak memory with Base loaded: fresh processes on both sides, and the server.
        Memory? memory = null;
        if (a.Has("memory") && a.Models.Contains("base"))
        {
            Progress("memory: a fresh process loads Base and runs a batch of 8, each side");
            var cs = await MemoryChildAsync(ct);
            double? pyMiB = py is null ? null : (await py.RunAsync(ct, "memory", "--model", "base")).Single().GetProperty("peak_mib").GetDouble();
            var server = http.FirstOrDefault(r => r.Model == "base")?.PeakUnbatched / 1048576.0;
            memory = new Memory(cs, pyMiB, server);
        }

        var report = Report(a, commandLine, cases, engineCases, http, memory, pyInfo, verifyNote, refusal, total.Elapsed);
        if (a.Out is not null) await File.WriteAllTextAsync(a.Out, report, ct);
        return report;
    }

    // ------------------------------------------------------------------ model cases (C#)

    private static readonly (string Name, int M, int K, int N)[] MatmulShapes = { ("square2048", 2048, 2048, 2048), ("vit_b_mlp", 1576, 768, 3072) };

    private static double Matmul(int m, int k, int n, bool quick)
    {
        using var x = randn(m, k);
        using var y = randn(k, n);
        using var _ = inference_mode();
        var times = TimeRuns(() => mm(x, y), 2, quick ? 5 : 15);
        return 2.0 * m * k * n / times.Min() / 1e6;
    }

    private static List<double> TimeRuns(Func<Tensor> run, int warmup, int runs)
    {
        var times = new List<double>();
        for (var i = 0; i < warmup + runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using (NewDisposeScope()) run();
            if (i >= warmup) times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return times;
    }

    // ------------------------------------------------------------------ the server

    private static async Task<HttpResult> HttpAsync(PerfArgs a, string model, CancellationToken ct)
    {
        var result = new HttpResult(model);
        var data = Path.Combine(Path.GetTempPath(), $"beitv2-perf-{Guid.NewGuid():N}"[..25]);
        Directory.CreateDirectory(data);
        var config = model == "tiny" ? VitConfig.Tiny(1000) : VitConfig.Base(1000);
        try
        {
            using (var saved = new BeitVisionTransformer(config))
            {
                var registry = new ModelRegistry(
                    new DataDirectory(Options.Create(new StorageOptions { DataDirectory = data }), new HostingEnvironment { ContentRootPath = data }),
                    Options.Create(new ModelsOptions { SeedDefaults = false }), NullLogger<ModelRegistry>.Instance);
                registry.Add(saved, $"perf-vit-{model}", "random initialisation (BeitV2.Bench perf)", makeDefault: true);
            }
            var image = BenchImage.Generate(640, 480);
            var limit = TimeSpan.FromSeconds(300);
            Progress($"HTTP {model}: starting the unbatched and the batched BeitV2.Web");
            await using var unbServer = await ServerProcess.StartAsync(data, new BenchMode(1, 0), a.EffectiveThreads, "cpu", TimeSpan.FromSeconds(120), ct, engine: a.Engine);
            await using var batServer = await ServerProcess.StartAsync(data, a.Batched, a.EffectiveThreads, "cpu", TimeSpan.FromSeconds(120), ct, engine: a.Engine);
            using var unb = new LoadClient(unbServer.BaseAddress, image.Bytes, image.ContentType);
            using var bat = new LoadClient(batServer.BaseAddress, image.Bytes, image.ContentType);
            foreach (var c in new[] { unb, bat })
            {
                await c.ClassifyAsync(ct);
                await c.SequentialAsync(3, limit, ct);
            }

            // One image: each request to the unbatched server, then the same forward alone in this process, in the
            // engine the server was told to use (our ONNX graph in an ORT session with serving's options, or TorchSharp).
            // The engine the server says it runs (a build without Inference:Engine serves with TorchSharp).
            var serverEngine = LoadClient.EngineOf(await unb.InfoAsync(ct)) ?? "torch";
            if (a.Engine is not null && serverEngine != a.Engine)
                Progress($"  the server runs engine '{serverEngine}' although Inference__Engine={a.Engine} was passed (a build without that setting?); the bare forward follows the server");
            using (var vit = new BeitVisionTransformer(config))
            using (var bare1 = BareEngine(serverEngine, a.EffectiveThreads, vit, out var bareNote))
            {
                vit.eval();
                result.BareEngine = bareNote;
                bare1.RunOnceMs();   // warm-up
                var pairs = a.Quick ? 3 : model == "base" ? 12 : 40;
                var before = await unb.MetricsAsync(ct);
                for (var i = 0; i < pairs; i++)
                {
                    // A pause before each side: on 2 cores, OpenMP threads spin for some milliseconds after a
                    // parallel region, and a forward started right after the other process's would pay for that.
                    await Task.Delay(50, ct);
                    var http = await unb.ClassifyAsync(ct);
                    await Task.Delay(50, ct);
                    var bare = bare1.RunOnceMs();
                    result.Http.Add(http);
                    result.Bare.Add(bare);
                    result.Overhead.Add(http / bare - 1);
                }
                result.ServerForwardMs = ServerSide.Between(before, await unb.MetricsAsync(ct)).MeanForwardMs;
            }
            for (var i = 0; i < (a.Quick ? 3 : model == "base" ? 6 : 20); i++)
            {
                await Task.Delay(50, ct);
                result.BatchedHttp.Add(await bat.ClassifyAsync(ct));
            }
            Progress($"  one image: {Median(result.Http):0.0} ms over HTTP, {Median(result.Bare):0.0} ms bare; overhead {100 * Median(result.Overhead):0} % (median of pairs)");

            // Throughput: alternate unbatched and batched phases, so each round's ratio compares neighbours in time.
            var rounds = a.Quick ? 1 : 2;
            for (var round = 1; round <= rounds; round++)
                foreach (var clients in new[] { 8, 32 })
                {
                    var total = a.Quick ? clients : model == "base" ? Math.Max(40, clients + 8) : 6 * clients;
                    var rates = new Dictionary<bool, double>();
                    foreach (var (batched, client) in new[] { (false, unb), (true, bat) })
                    {
                        await client.ConcurrentAsync(clients, clients, limit, ct);   // every client connected and warm
                        var b = await client.MetricsAsync(ct);
                        var load = await client.ConcurrentAsync(clients, total, limit, ct);
                        var srv = ServerSide.Between(b, await client.MetricsAsync(ct));
                        if (load.Failed > 0) throw new InvalidOperationException($"{load.Failed} of {total} requests failed with {clients} clients");
                        rates[batched] = load.RequestsPerSecond;
                        var key = (batched, clients);
                        if (!result.Load.TryGetValue(key, out var list)) result.Load[key] = list = new();
                        list.Add((load.RequestsPerSecond, srv.MeanBatch));
                    }
                    if (!result.Gain.TryGetValue(clients, out var gains)) result.Gain[clients] = gains = new();
                    gains.Add(rates[true] / rates[false]);
                    Progress($"  round {round}, {clients} clients: unbatched {rates[false]:0.00} img/s, batched {rates[true]:0.00} img/s ({rates[true] / rates[false]:0.00}×)");
                }
            result.PeakUnbatched = PeakBytes(unbServer.Pid);
            result.PeakBatched = PeakBytes(batServer.Pid);
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); }
            catch (IOException e) { Progress($"could not delete {data}: {e.Message}"); }
        }
        return result;
    }

    /// <summary>The bare batch-1 classify forward in the engine the server runs (onnx: our graph in ORT; else TorchSharp).</summary>
    private static ForwardEngine BareEngine(string engine, int threads, BeitVisionTransformer vit, out string note)
    {
        if (engine == "onnx")
        {
            var proto = ModelCatalog.Default.EntryOf(vit)!.ExportOnnx(vit, OnnxExportOptions.Serving);
            var session = new OrtForward.Session(Google.Protobuf.MessageExtensions.ToByteArray(proto), threads);
            note = "our ONNX graph in ONNX Runtime with serving's session options (server engine: onnx)";
            return new OwningOrt(session, OrtForward.On(EngineKeys.Onnx, session, 1, vit.Config.ImgSize, OnnxNames.Probs));
        }
        note = $"TorchSharp (server engine: {engine})";
        return new TorchSharpForward(1, vit.Config.ImgSize, x => vit.ForwardHead(vit.ForwardFeatures(x).Features).softmax(-1));
    }

    /// <summary>An ORT engine that also owns its session.</summary>
    private sealed class OwningOrt(OrtForward.Session session, OrtForward inner) : ForwardEngine
    {
        public override string Key => inner.Key;
        public override double RunOnceMs() => inner.RunOnceMs();
        public override void Dispose()
        {
            inner.Dispose();
            session.Dispose();
            base.Dispose();
        }
    }

    /// <summary>The hidden <c>perf-memory</c> verb: load the Base classifier, run one batch of 8, print VmHWM in MiB.</summary>
    public static int MemoryChild()
    {
        TorchRuntime.ConfigureThreads(Environment.ProcessorCount);
        using var vit = new BeitVisionTransformer(VitConfig.Base(1000));
        vit.eval();
        using (inference_mode())
        using (NewDisposeScope())
        using (var x = randn(8, 3, 224, 224))
            vit.forward(x).softmax(-1);
        Console.WriteLine((PeakBytes(Environment.ProcessId) / 1048576.0).ToString("0.0", Inv));
        return 0;
    }

    private static async Task<double> MemoryChildAsync(CancellationToken ct)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(PerfBench).Assembly.Location);
        psi.ArgumentList.Add("perf-memory");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start the memory child");
        var output = await p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return p.ExitCode == 0 ? double.Parse(output.Trim(), Inv) : throw new InvalidOperationException($"perf-memory exited with {p.ExitCode}");
    }

    /// <summary>VmHWM (peak resident set) of a process, from /proc; 0 where there is no /proc.</summary>
    private static long PeakBytes(int pid) => ProcStatusLine.Read(pid, "VmHWM:");

    // ------------------------------------------------------------------ report

    private sealed record Memory(double CsLibraryMiB, double? PyMiB, double? ServerMiB);

    private static string Report(PerfArgs a, string commandLine, List<Case> cases, List<EngineBench.Case> engineCases, List<HttpResult> http, Memory? memory,
        string pyInfo, string verifyNote, string? refusal, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        void L(string line = "") => sb.AppendLine(line);
        string F(double v, string format = "0.0") => double.IsNaN(v) ? "–" : v.ToString(format, Inv);
        string Ratio(double v) => double.IsNaN(v) ? "–" : v.ToString("0.00", Inv) + "×";
        var engines = a.EngineSettings.Engines;

        L("## BeitV2 performance: ONNX Runtime, TorchSharp and the PyTorch reference");
        L();
        L($"- command: `dotnet run -c Release --project BeitV2.Bench -- {commandLine}`{(a.Quick ? " (**--quick: smoke run, not figures to publish**)" : "")}");
        L($"- date: {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}; bench time {elapsed.TotalMinutes:0.0} min; load average at the end {BenchMachine.LoadAverage()}");
        L($"- machine: {Environment.ProcessorCount} cores ({ServeBench.CpuName()}), {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}");
        L($"- threads per engine: {a.EffectiveThreads} (ORT intra-op {a.EffectiveThreads}, inter-op 1, sequential; torch intra-op {a.EffectiveThreads} on both torch sides; OPENBLAS_NUM_THREADS={a.EffectiveThreads})");
        L($"- ONNX Runtime {OrtVersion()} (NuGet Microsoft.ML.OnnxRuntime, CPU provider), graph optimisation level ORT_ENABLE_ALL (ORT's default, as serving uses it) for the anchor and our graphs alike");
        L($"- TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version} (libtorch 2.10 CPU, MKL statically linked, libgomp), in this process; OMP_WAIT_POLICY here: {Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset)"}; inference with the fused attention and `inference_mode`");
        L($"- PyTorch reference: {pyInfo}; models in `BeitV2.Bench/reference/beitv2_models.py`, written op for op after the official code{(verifyNote.Length > 0 ? "; " + verifyNote : "")}");
        L("- the naive ORT anchor: that reference exported by `bench_reference.py export` with `torch.onnx.export` (opset 17, default constant folding, dynamic batch) and run with the same session options as our graphs");
        L($"- every model has random weights (speed does not depend on them); each repetition runs every engine once on the same batch, in rotating order, {a.SettleMs} ms apart; the C# engines share this process, PyTorch runs in a worker process of its own");
        L();
        if (refusal is not null) { L($"> **{refusal}**"); L(); }
        if (engineCases.Count > 0) L(EngineReport.Tables(engineCases, engines, refusal));
        if (cases.Count > 0)
        {
            L("### Matmul and training cases (TorchSharp against PyTorch)");
            L();
            L("Speed-up = PyTorch time ÷ BeitV2 time (> 1: BeitV2 is faster).");
            L();
            L("| case | preset | batch | unit | BeitV2 | PyTorch | speed-up | what runs |");
            L("|---|---|---:|---|---:|---:|---:|---|");
            foreach (var c in cases)
            {
                var fmt = c.Unit is "GFLOP/s" or "tokens/s" ? "0" : c.Unit == "img/s" ? "0.00" : "0.0";
                L($"| {c.Name} | {c.Model} | {c.Batch} | {c.Unit} | {F(c.CsMedian, fmt)} | {F(c.PyMedian, fmt)}{(refusal is not null && c.Py.Count > 0 ? " ⚠ netlib" : "")} | {(refusal is not null ? "withheld" : Ratio(c.SpeedUp))} | {c.Detail} |");
            }
            L();
        }
        if (http.Count > 0)
        {
            L("### The server over HTTP");
            L();
            L($"`POST /api/v1/classify?topK=5`, one generated 640×480 JPEG per request (decode, resize, crop, normalise, forward, JSON). Two BeitV2.Web servers run side by side: unbatched (Inference:MaxBatch 1) and batched (MaxBatch {a.Batched.MaxBatch}, MaxWaitMs {a.Batched.MaxWaitMs}, MaxGatherMs 100: the defaults). " +
              $"Inference:Engine {(a.Engine is null ? "the server's default" : $"`{a.Engine}` (Inference__Engine)")}; each one-image request is followed by the same batch-1 forward alone in the bench process ({http.First().BareEngine}), and the overhead is the median over these pairs; throughput phases alternate between the two servers, and the gain is the median of the per-round ratios.");
            L();
            L("| preset | one image over HTTP ms | bare forward ms | HTTP overhead | server forward ms | one image, batched server ms | 8 clients img/s unbatched → batched | gain | mean batch | 32 clients img/s unbatched → batched | gain | mean batch | peak RSS unbatched / batched |");
            L("|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|");
            foreach (var r in http)
            {
                string Rates(int n) => $"{F(Median(r.Load[(false, n)].Select(x => x.Rate).ToList()), "0.00")} → {F(Median(r.Load[(true, n)].Select(x => x.Rate).ToList()), "0.00")}";
                string Batch(int n) => F(Median(r.Load[(true, n)].Select(x => x.MeanBatch).ToList()), "0.0");
                L($"| {r.Model} | {F(Median(r.Http))} | {F(Median(r.Bare))} | {F(100 * Median(r.Overhead), "0")} % | {F(r.ServerForwardMs)} | {F(Median(r.BatchedHttp))} | " +
                  $"{Rates(8)} | {Ratio(Median(r.Gain[8]))} | {Batch(8)} | {Rates(32)} | {Ratio(Median(r.Gain[32]))} | {Batch(32)} | {r.PeakUnbatched / 1048576.0:0} / {r.PeakBatched / 1048576.0:0} MiB |");
            }
            L();
        }
        if (memory is not null)
        {
            L("### Peak memory with Base loaded");
            L();
            L("| process | peak RSS (VmHWM) |");
            L("|---|---:|");
            L($"| BeitV2.Ml alone: a fresh .NET process loads the Base classifier and runs one batch of 8 | {F(memory.CsLibraryMiB, "0")} MiB |");
            L($"| PyTorch: a fresh Python process does the same | {(memory.PyMiB is { } p ? F(p, "0") + " MiB" : "not run")} |");
            L($"| BeitV2.Web server serving Base (unbatched, after 32 clients; ASP.NET Core, Hangfire and 32 decoded uploads included) | {(memory.ServerMiB is { } srv ? F(srv, "0") + " MiB" : "not run (--parts without http)")} |");
            L();
            if (memory.PyMiB is { } py2) L($"BeitV2.Ml / PyTorch: {memory.CsLibraryMiB / py2:0.00}.");
            L();
        }
        L(Targets(cases, engineCases, http));
        return sb.ToString();
    }

    private static string Targets(List<Case> cases, List<EngineBench.Case> engineCases, List<HttpResult> http)
    {
        var sb = new StringBuilder();
        sb.AppendLine("### Targets");
        sb.AppendLine();
        string Mark(bool ok) => ok ? "met" : "**missed**";
        if (engineCases.Count > 0) sb.Append(EngineReport.Targets(engineCases));
        var baseHttp = http.FirstOrDefault(r => r.Model == "base");
        if (baseHttp is not null)
        {
            var overhead = Median(baseHttp.Overhead);
            sb.AppendLine(string.Create(Inv, $"- Base HTTP overhead for one image {100 * overhead:0} % above the bare forward (median of {baseHttp.Overhead.Count} request/forward pairs; target < 10 %): {Mark(overhead < 0.10)}"));
            var gain = Median(baseHttp.Gain[8]);
            sb.AppendLine(string.Create(Inv, $"- Base with 8 clients, batched {gain:0.00}× unbatched (target ≥ 1.3×): {Mark(gain >= 1.3)}"));
        }
        var rate = cases.FirstOrDefault(c => c.Name == "matmul square2048");
        if (rate is not null && engineCases.Count > 0)
            sb.Append(EngineReport.TorchSharpTargets(engineCases, rate.CsMedian, double.IsNaN(rate.PyMedian) ? rate.CsMedian : Math.Max(rate.CsMedian, rate.PyMedian)));
        return sb.ToString();
    }

    private static string OrtVersion()
    {
        try { return Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString(); }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException) { return $"? ({e.Message})"; }
    }

    private static double Median(List<double> x)
    {
        if (x.Count == 0) return double.NaN;
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string? FindFixtures()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "fixtures", "reference");
            if (File.Exists(Path.Combine(candidate, "vit_cls.pth"))) return candidate;
        }
        return null;
    }

    private static void Progress(string message) => Console.Error.WriteLine($"[perf {DateTime.Now:HH:mm:ss}] {message}");
}
