using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BeitV2.Ml;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>
/// The <c>train</c> command: training throughput of the five real trainers on synthetic in-memory
/// batches, for the tiny and Base presets, printed as markdown.
/// </summary>
/// <remarks>
/// A step is timed from the moment the trainer receives its batch (the enumerator hands it over) to the
/// trainer's per-step progress report, so it covers everything <c>TrainerBase</c> does per step
/// (device copy, forward, loss, backward, gradient clipping, AdamW, metrics, dispose scope), but not the
/// making of the synthetic batch (a clone of one template) — data loading and augmentation are not measured.
/// </remarks>
public static class TrainBench
{
    private sealed record Attempt(IReadOnlyList<double> StepSeconds, double Foreign, bool HitTimeLimit);

    private sealed record Result(string Stage, string Model, string Description, string Input, int Batch, int Warmup, int Steps,
        Attempt? Best, int Attempts, long PeakBytes, double SetupSeconds, string? Error)
    {
        public double MeanStep => Best is { StepSeconds.Count: > 0 } b ? b.StepSeconds.Average() : double.NaN;
        public double ImagesPerSecond => Best is { StepSeconds.Count: > 0 } b ? Batch * b.StepSeconds.Count / b.StepSeconds.Sum() : double.NaN;
    }

    /// <summary>A stage ready to run: the trainer behind a delegate, a template batch, and what to dispose afterwards.</summary>
    private sealed class Setup : IDisposable
    {
        public required Func<ITrainingData, IProgress<TrainingProgress>, CancellationToken, TrainingResult> Run { get; init; }
        public required TrainingBatch Template { get; init; }
        public required string Description { get; init; }
        public required string Input { get; init; }
        public List<IDisposable> Owned { get; } = new();

        public void Dispose()
        {
            Template.Dispose();
            foreach (var d in Owned) d.Dispose();
        }
    }

    /// <summary>Images/s of one stage (its timed steps), for callers that compare it with something else (<c>perf</c>).</summary>
    public sealed record StageTiming(string Stage, string Model, int Batch, IReadOnlyList<double> StepSeconds, double ImagesPerSecond, long PeakBytes, string? Error);

    public static StageTiming Time(TrainArgs a, string stage, string model, CancellationToken ct)
    {
        set_num_threads(a.EffectiveThreads);
        var r = RunOne(a, stage, model, ct);
        return new StageTiming(stage, model, r.Batch, r.Best?.StepSeconds ?? Array.Empty<double>(), r.ImagesPerSecond, r.PeakBytes, r.Error);
    }

    public static string Run(TrainArgs a, string commandLine, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        set_num_threads(a.EffectiveThreads);
        var results = new List<Result>();
        foreach (var model in a.Models)
            foreach (var stage in a.Stages)
            {
                ct.ThrowIfCancellationRequested();
                results.Add(RunOne(a, stage, model, ct));
            }
        return Report(a, commandLine, results, total.Elapsed);
    }

    private static Result RunOne(TrainArgs a, string stage, string model, CancellationToken ct)
    {
        var batch = a.BatchFor(stage, model);
        var steps = a.StepsFor(stage, model);
        var warmup = a.WarmupFor(model);
        var maxSteps = warmup + steps * (1 + a.Retries);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var peakIsHwm = ResetPeak();
        var setupClock = Stopwatch.StartNew();
        Progress($"{stage} / {model}: building the model(s), batch {batch}, {warmup} warm-up + {steps} timed steps");
        Setup? setup = null;
        try
        {
            setup = Build(a, stage, model, batch, maxSteps);
            var setupSeconds = setupClock.Elapsed.TotalSeconds;
            Progress($"  {setup.Description}; built in {setupSeconds:0.0} s");
            using var clock = new StepClock(a, $"{stage}/{model}", setup.Template, warmup, steps, maxSteps, ct);
            var result = setup.Run(clock, clock, clock.Token);
            if (stage == "probe") result.Model.Dispose();   // the probe delivers a new classifier
            clock.Finish();
            var best = clock.Attempts.Count == 0 ? null : clock.Attempts.MinBy(x => double.IsNaN(x.Foreign) ? 0 : x.Foreign);
            return new Result(stage, model, setup.Description, setup.Input, batch, warmup, steps, best, clock.Attempts.Count,
                PeakBytes(peakIsHwm), setupSeconds, null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Progress($"  failed: {e.GetType().Name}: {e.Message}");
            return new Result(stage, model, setup?.Description ?? "?", setup?.Input ?? "?", batch, warmup, steps, null, 0,
                PeakBytes(peakIsHwm), setupClock.Elapsed.TotalSeconds, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            setup?.Dispose();
        }
    }

    // ------------------------------------------------------------------ models

    /// <summary>Tiny tokenizer: the Base3xClip layout shrunk to ViT-Ti width (192, 3 heads), a 1-block decoder, 8192 × 32 codebook, 192-d targets.</summary>
    internal static VqkdConfig TinyTokenizer() => VqkdConfig.Base3xClip() with
    {
        Encoder = VqkdConfig.DefaultVit(224, 16, 3, 12) with { EmbedDim = 192, NumHeads = 3 },
        Decoder = VqkdConfig.DefaultVit(14, 1, 32, 1) with { EmbedDim = 192, NumHeads = 3 },
        NEmbed = 8192, EmbedDim = 32, DecoderOutDim = 192,
    };

    /// <summary>A CLIP-style ViT-Ti/16 teacher (192 wide, 12 layers, 3 heads, 192-d output).</summary>
    private static ClipVisionConfig TinyClip() => new() { InputResolution = 224, PatchSize = 16, Width = 192, Layers = 12, Heads = 3, OutputDim = 192 };

    /// <summary>Tiny segmentation: ViT-Ti backbone at 256 px (16×16 patches), UperNet width 192; the rest as <see cref="SegmentationConfig.Base"/>.</summary>
    internal static SegmentationConfig TinySegmentation() => SegmentationConfig.Base(150) with
    {
        Backbone = VitConfig.Tiny(numClasses: 0) with { ImgSize = 256 }, Channels = 192,
    };

    private static long Count(nn.Module m) => m.parameters().Sum(p => p.numel());
    private static string M(long n) => (n / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " M";

    private static Setup Build(TrainArgs a, string stage, string model, int batch, long maxSteps)
    {
        var tiny = model == "tiny";
        // Every stage: the bench's device and precision on top of the stage's reference options.
        T On<T>(T options) where T : TrainerOptions => (T)(options with { Device = a.Device, MixedPrecision = a.Precision });
        switch (stage)
        {
            case "tokenizer":
            {
                var config = tiny ? TinyTokenizer() : VqkdConfig.Base3xClip();
                var teacher = new ClipTeacher(tiny ? TinyClip() : ClipVisionConfig.ViTB16());
                var tokenizer = new VqkdTokenizer(config);
                var trainer = new TokenizerTrainer(tokenizer, teacher, On(TokenizerTrainerOptions.Reference() with { MaxSteps = maxSteps, ReportEverySteps = 1 }));
                var setup = new Setup
                {
                    Run = (d, p, c) => trainer.Run(d, null, p, c),
                    Template = new TrainingBatch { Images = rand(batch, 3, 224, 224) },
                    Description = $"VQ-KD {(tiny ? "tiny (ViT-Ti encoder, 1-block decoder)" : "Base3xClip (ViT-B encoder, 3-block decoder)")} {M(Count(tokenizer))}, " +
                                  $"codebook {config.NEmbed}×{config.EmbedDim}; frozen random CLIP {(tiny ? "ViT-Ti/16-sized" : "ViT-B/16")} teacher {M(Count(teacher))}",
                    Input = "224 px",
                };
                setup.Owned.Add(tokenizer);
                setup.Owned.Add(teacher);
                return setup;
            }
            case "pretrain":
            {
                // A random unit-norm codebook marked as initialised stands in for a trained tokenizer.
                var tokenizer = new VqkdTokenizer((tiny ? TinyTokenizer() : VqkdConfig.Base3xClip()) with { QuantizeKmeansInit = false });
                var mim = new BeitMim(tiny ? MimConfig.Tiny() : MimConfig.Base());
                var trainer = new PretrainTrainer(mim, tokenizer, On(PretrainTrainerOptions.Base1600() with { MaxSteps = maxSteps, ReportEverySteps = 1 }));
                var setup = new Setup
                {
                    Run = (d, p, c) => trainer.Run(d, null, p, c),
                    Template = new TrainingBatch { Images = randn(batch, 3, 224, 224), TokenizerImages = rand(batch, 3, 224, 224) },
                    Description = $"BEiT v2 MIM {(tiny ? "ViT-Ti" : "ViT-B")}/16 {M(Count(mim))} (75 masked patches, drop path 0.1); frozen VQ-KD tokenizer {M(Count(tokenizer))} labels the targets",
                    Input = "224 px",
                };
                setup.Owned.Add(mim);
                setup.Owned.Add(tokenizer);
                return setup;
            }
            case "probe":
            {
                var mim = new BeitMim(tiny ? MimConfig.Tiny() : MimConfig.Base());
                var trainer = new LinearProbeTrainer(mim, On(LinearProbeOptions.Reference(1000) with { MaxSteps = maxSteps, ReportEverySteps = 1 }));
                var setup = new Setup
                {
                    Run = (d, p, c) => trainer.Run(d, null, p, c),
                    Template = new TrainingBatch { Images = randn(batch, 3, 224, 224), Labels = randint(0, 1000, batch) },
                    Description = $"linear probe (BatchNorm + linear, 1000 classes) on the final [CLS] of a frozen {(tiny ? "ViT-Ti" : "ViT-B")}/16 MIM model {M(Count(mim))}",
                    Input = "224 px",
                };
                setup.Owned.Add(mim);
                return setup;
            }
            case "finetune":
            {
                var options = On(FineTuneOptions.BaseFromPt1k300() with { MaxSteps = maxSteps, ReportEverySteps = 1 });
                var vit = FineTuneTrainer.CreateModel(tiny ? VitConfig.Tiny(1000) : VitConfig.Base(1000), options);
                var trainer = new FineTuneTrainer(vit, options);
                var setup = new Setup
                {
                    Run = (d, p, c) => trainer.Run(d, null, p, c),
                    Template = new TrainingBatch { Images = randn(batch, 3, 224, 224), Labels = randint(0, 1000, batch) },
                    Description = $"{(tiny ? "ViT-Ti" : "ViT-B")}/16 classifier {M(Count(vit))}, 1000 classes, layer decay 0.65, drop path 0.1, label smoothing 0.1",
                    Input = "224 px",
                };
                setup.Owned.Add(vit);
                return setup;
            }
            case "segmentation":
            {
                var options = On(SegmentationTrainerOptions.BasePt1k() with { MaxSteps = maxSteps, ReportEverySteps = 1 });
                var config = tiny ? TinySegmentation() : SegmentationConfig.Base(150);
                var segmenter = SegmentationTrainer.CreateModel(config, options);
                var trainer = new SegmentationTrainer(segmenter, options);
                var size = config.Backbone.ImgSize;
                var setup = new Setup
                {
                    Run = (d, p, c) => trainer.Run(d, null, p, c),
                    Template = new TrainingBatch { Images = randn(batch, 3, size, size), Masks = randint(0, 150, new long[] { batch, size, size }) },
                    Description = $"UperNet + {(tiny ? "ViT-Ti" : "ViT-B")}/16 {M(Count(segmenter))} at {size} px, head width {config.Channels}, FCN aux head, 150 classes, drop path 0.15",
                    Input = $"{size} px",
                };
                setup.Owned.Add(segmenter);
                return setup;
            }
            default:
                throw new ArgumentException($"unknown stage '{stage}'");
        }
    }

    // ------------------------------------------------------------------ timing

    /// <summary>
    /// The data source and the progress sink of one trainer run: hands out clones of the template batch,
    /// times each step (hand-over → the trainer's step report), waits for a quiet machine before each timed
    /// window, and stops the trainer (cancellation) once a window is accepted.
    /// </summary>
    private sealed class StepClock : ITrainingData, IProgress<TrainingProgress>, IDisposable
    {
        private readonly TrainArgs a;
        private readonly string label;
        private readonly TrainingBatch template;
        private readonly int warmup, steps;
        private readonly CancellationTokenSource stop;
        private readonly int[] self = { Environment.ProcessId };
        private long handOver;
        private bool needStart, inWindow;
        private List<double> current = new();
        private CpuMonitor.Sample? cpu0;
        private readonly Stopwatch window = new();
        private readonly Device device;

        public StepClock(TrainArgs a, string label, TrainingBatch template, int warmup, int steps, int maxSteps, CancellationToken outer)
        {
            this.a = a;
            this.label = label;
            this.template = template;
            this.warmup = warmup;
            this.steps = steps;
            device = TorchRuntime.ResolveDevice(a.Device);
            BatchesPerEpoch = maxSteps + 1;   // the epoch never ends: no epoch-end hook in the timing
            stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
            needStart = warmup == 0;
        }

        public int BatchesPerEpoch { get; }
        public CancellationToken Token => stop.Token;
        public List<Attempt> Attempts { get; } = new();

        public IEnumerable<TrainingBatch> GetBatches(int epoch, int skip = 0)
        {
            for (var i = skip; i < BatchesPerEpoch; i++)
            {
                if (needStart) StartWindow();
                var b = new TrainingBatch
                {
                    Images = template.Images.clone(),
                    Labels = template.Labels?.clone(),
                    Masks = template.Masks?.clone(),
                    TokenizerImages = template.TokenizerImages?.clone(),
                };
                handOver = Stopwatch.GetTimestamp();
                yield return b;
            }
        }

        public void Report(TrainingProgress p)
        {
            if (p.Event != TrainingEvent.Step) return;
            TorchRuntime.Synchronize(device);   // the optimiser's kernels may still be queued on a GPU
            var seconds = Stopwatch.GetElapsedTime(handOver).TotalSeconds;
            if (!inWindow)
            {
                Progress($"  {label} warm-up step {p.Step}: {seconds:0.00} s (loss {p.Loss:0.000})");
                if (p.Step == warmup) needStart = true;
                return;
            }
            current.Add(seconds);
            Progress($"  {label} timed step {current.Count}/{steps}: {seconds:0.00} s (loss {p.Loss:0.000})");
            var hitLimit = window.Elapsed.TotalSeconds >= a.MaxSeconds;
            if (current.Count >= steps || hitLimit) EndWindow(hitLimit, allowRetry: !hitLimit);
        }

        private void StartWindow()
        {
            needStart = false;
            CpuMonitor.WaitQuietAsync(() => self, a.QuietThreshold, TimeSpan.FromSeconds(a.WaitQuietSeconds), Progress, stop.Token).GetAwaiter().GetResult();
            current = new List<double>();
            cpu0 = CpuMonitor.Take(self);
            window.Restart();
            inWindow = true;
        }

        private void EndWindow(bool hitLimit, bool allowRetry)
        {
            inWindow = false;
            var foreign = CpuMonitor.ForeignCores(cpu0, CpuMonitor.Take(self));
            Attempts.Add(new Attempt(current, foreign, hitLimit));
            if (hitLimit) Progress($"  {label}: the timed window reached --max-seconds after {current.Count} steps");
            if (allowRetry && foreign > a.QuietThreshold && Attempts.Count <= a.Retries)
            {
                Progress($"  other processes used {foreign:0.00} cores during the timed steps; repeating them");
                needStart = true;
                return;
            }
            stop.Cancel();   // enough: the trainer stops before its next step
        }

        /// <summary>After the run: closes a window the trainer ended (it should not happen: the budget covers every window).</summary>
        public void Finish()
        {
            if (inWindow && current.Count > 0) EndWindow(hitLimit: false, allowRetry: false);
        }

        public void Dispose() => stop.Dispose();
    }

    // ------------------------------------------------------------------ memory

    /// <summary>Resets the kernel's peak-RSS mark (VmHWM) of this process; false where that is not possible.</summary>
    private static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>VmHWM since <see cref="ResetPeak"/>, or the process-lifetime peak working set.</summary>
    private static long PeakBytes(bool hwm)
    {
        if (hwm)
        {
            try
            {
                var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
                if (line is not null && ProcStatusLine.Bytes(line) is { } bytes) return bytes;
            }
            catch (Exception e) when (e is IOException or FormatException) { }
        }
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64;
    }

    // ------------------------------------------------------------------ report

    private static void Progress(string message) => Console.Error.WriteLine($"[bench {DateTime.Now:HH:mm:ss}] {message}");

    private static string Report(TrainArgs a, string commandLine, IReadOnlyList<Result> results, TimeSpan elapsed)
    {
        var inv = CultureInfo.InvariantCulture;
        string F(double v, string format) => double.IsNaN(v) ? "–" : v.ToString(format, inv);
        var sb = new StringBuilder();
        void L(string line = "") => sb.AppendLine(line);

        L("## BeitV2 training throughput");
        L();
        L($"- command: `dotnet run -c Release --project BeitV2.Bench -- {commandLine}`");
        L($"- date: {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}; total bench time {elapsed.TotalSeconds:0} s");
        L($"- machine: {Environment.ProcessorCount} cores ({CpuName()}), {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024):0} GiB RAM, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}, CUDA available: {cuda.is_available()}, device {TorchRuntime.Name(TorchRuntime.ResolveDevice(a.Device))}, torch threads {get_num_threads()}, precision {a.Precision.Name()}");
        L("- data: one synthetic batch per stage held in memory, cloned for every step (no decoding or augmentation); random weights everywhere (teachers and tokenizers too)");
        L();
        L("| stage | preset | input | batch | warm-up + timed steps | s/step (mean) | min – max s/step | images/s | peak working set | other processes (cores) |");
        L("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            var gib = F(r.PeakBytes / (1024.0 * 1024 * 1024), "0.0") + " GiB";
            if (r.Error is not null)
            {
                L($"| {r.Stage} | {r.Model} | {r.Input} | {r.Batch} | {r.Warmup} + {r.Steps} | failed: {r.Error.Replace('|', '/')} | | | {gib} | |");
                continue;
            }
            var times = r.Best?.StepSeconds ?? Array.Empty<double>();
            var stepsText = $"{r.Warmup} + {times.Count}" + (r.Best?.HitTimeLimit == true ? " (time limit)" : "");
            var foreign = (r.Best is null || double.IsNaN(r.Best.Foreign) ? "–" : F(r.Best.Foreign, "0.00")) + (r.Attempts > 1 ? $" (best of {r.Attempts})" : "");
            var range = times.Count == 0 ? "–" : $"{F(times.Min(), "0.00")} – {F(times.Max(), "0.00")}";
            L($"| {r.Stage} | {r.Model} | {r.Input} | {r.Batch} | {stepsText} | {F(r.MeanStep, "0.00")} | {range} | **{F(r.ImagesPerSecond, r.ImagesPerSecond < 0.1 ? "0.000" : "0.00")}** | {gib} | {foreign} |");
        }
        L();
        L("Models:");
        L();
        foreach (var r in results) L($"- {r.Stage} / {r.Model}: {r.Description} (built in {F(r.SetupSeconds, "0.0")} s)");
        L();
        L("A step is timed from the hand-over of its batch to the trainer's per-step progress report: device copy, forward, loss, backward, "
          + "gradient clipping (pretraining), AdamW and the trainer's bookkeeping; images/s = batch × timed steps / their total time. "
          + "Peak working set = the process's peak resident memory (VmHWM, reset before each stage) while the stage was built and run. "
          + "\"Other processes\" is the CPU (in cores, averaged over the timed steps) used by other processes, from /proc/stat; "
          + "with --retries a timed window during which it exceeded 0.2 cores was repeated and the least disturbed one is shown.");
        return sb.ToString();
    }

    private static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException) { return RuntimeInformation.ProcessArchitecture.ToString(); }
    }
}
