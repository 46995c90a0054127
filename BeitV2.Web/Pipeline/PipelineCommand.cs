using System.Globalization;
using System.Text.Json;
using BeitV2.Ml.Training;
using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Pipeline;

/// <summary>
/// <c>dotnet run --project BeitV2.Web -c Release -- pipeline [--preset fashion-small] [--seed 0] [--work DIR] [--export DIR]</c>:
/// runs the pipeline in this process (no web server), printing progress, then the results table.
/// <c>--export</c> writes the served models (tokenizer, MIM model, classifier, segmenter), their
/// <c>defaults.json</c> and the results into a folder in the bundled-defaults layout
/// (<c>BeitV2.Web/DefaultModels</c> is such a folder). Rerunning with the same <c>--work</c> continues.
/// </summary>
public static class PipelineCommand
{
    public const string Usage = "pipeline [--preset fashion-small|smoke] [--seed N] [--work DIR] [--export DIR] [--threads N] [--until STAGE]";

    /// <summary>The stages whose models ship, and the kind each is the default of.</summary>
    public static readonly IReadOnlyList<string> Shipped = ["tokenizer", "pretrain", "classifier", "segmentation"];

    public static int Run(string[] args)
    {
        string preset = "fashion-small", work = Path.GetFullPath("pipeline-work");
        string? export = null, until = null;
        int seed = 0, threads = 0;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--preset": preset = Next(); break;
                case "--seed": seed = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--work": work = Path.GetFullPath(Next()); break;
                case "--export": export = Path.GetFullPath(Next()); break;
                case "--until": until = Next(); break;
                case "--threads": threads = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                default:
                    Console.Error.WriteLine($"Unknown option {args[i]}.\nUsage: {Usage}");
                    return 2;
            }
        }
        var stages = PipelinePreset.Get(preset, seed).StageNames; // fails early on an unknown preset
        if (until is not null && !stages.Contains(until))
        {
            Console.Error.WriteLine($"Unknown stage '{until}' for --until. Stages: {string.Join(", ", stages)}.");
            return 2;
        }

        var builder = WebApplication.CreateBuilder([$"--Storage:DataDirectory={Path.Combine(work, "data")}", "--Ml:Device=auto",
            .. threads > 0 ? new[] { $"--Ml:Threads={threads}" } : [], "--Models:SeedDefaults=false", "--Logging:LogLevel:Default=Warning"]);
        builder.AddServiceDefaults();
        builder.Services.AddModelRegistry();
        builder.Services.AddTrainingJobs(builder.Configuration);
        builder.Services.AddTrainingPipeline();
        using var app = builder.Build();
        BeitV2.Ml.TorchRuntime.ConfigureThreads(threads > 0 ? threads : Environment.ProcessorCount);
        var runner = app.Services.GetRequiredService<PipelineRunner>();
        var registry = app.Services.GetRequiredService<ModelRegistry>();

        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        var started = DateTime.UtcNow;
        var outcome = runner.Run(preset, seed, Path.Combine(work, "run"), $"pipeline-{preset}-s{seed}", new ConsoleProgress(started),
            line => Console.WriteLine($"[{DateTime.UtcNow - started:hh\\:mm\\:ss}] {line}"), cts.Token, until);
        if (outcome.Cancelled)
        {
            Console.WriteLine("Cancelled; run the same command again to continue.");
            return 130;
        }
        var report = PipelineReport.Markdown(outcome.State);
        Console.WriteLine();
        Console.WriteLine(report);
        if (export is not null && until is not null && until != stages[^1])
            Console.WriteLine($"Stopped after {until}; not exporting (run without --until to finish and export).");
        else if (export is not null) Export(outcome.State, registry, export, report);
        return 0;
    }

    private static void Export(PipelineState state, ModelRegistry registry, string folder, string report)
    {
        Directory.CreateDirectory(folder);
        var defaults = new Dictionary<string, string>();
        foreach (var stage in Shipped)
        {
            var id = state.Stages[stage].Model!;
            var info = registry.Get(id);
            var target = Path.Combine(folder, id);
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
            Directory.CreateDirectory(target);
            foreach (var file in Directory.GetFiles(registry.PackageDirectory(id)))
                File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
            defaults[info.Kind] = id;
            Console.WriteLine($"exported {info.Kind} {id}");
        }
        AtomicFile.WriteAllText(Path.Combine(folder, "defaults.json"), JsonSerializer.Serialize(defaults, new JsonSerializerOptions { WriteIndented = true }));
        // Model folders of an earlier export into the same place would otherwise be seeded too.
        foreach (var stale in Directory.GetDirectories(folder))
            if (!defaults.ContainsValue(Path.GetFileName(stale)) && File.Exists(Path.Combine(stale, "manifest.json")))
            {
                Directory.Delete(stale, recursive: true);
                Console.WriteLine($"removed {Path.GetFileName(stale)} (not part of this export)");
            }
        AtomicFile.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(state, JobStore.Json));
        AtomicFile.WriteAllText(Path.Combine(folder, "results.md"), report);
    }

    private sealed class ConsoleProgress(DateTime started) : IProgress<TrainingProgress>
    {
        private DateTime last;

        public void Report(TrainingProgress p)
        {
            foreach (var line in p.Log) Console.WriteLine($"[{DateTime.UtcNow - started:hh\\:mm\\:ss}]   {p.Stage}: {line}");
            if (p.Event == TrainingEvent.Step && DateTime.UtcNow - last < TimeSpan.FromSeconds(15)) return;
            last = DateTime.UtcNow;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{DateTime.UtcNow - started:hh\\:mm\\:ss}]   {p.Stage} epoch {p.Epoch + 1}/{p.Epochs} step {p.Step}/{p.Steps} loss {p.Loss:F4} " +
                $"{p.ImagesPerSecond:F0} img/s eta {p.EtaSeconds ?? 0:F0} s {string.Join(" ", p.Metrics.Where(kv => kv.Key is "accuracy" or "mIoU" or "codebookUsage" or "mimAccuracy").Select(kv => $"{kv.Key}={kv.Value:F3}"))}"));
        }
    }
}
