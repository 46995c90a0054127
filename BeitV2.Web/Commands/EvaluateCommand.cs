using System.Globalization;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Training;
using BeitV2.Web.Errors;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Commands;

/// <summary>
/// <c>dotnet run -c Release --project BeitV2.Web -- evaluate --model ID_OR_NAME [--dataset ID] [--split test|train]
/// [--max-images N] [--batch-size N] [--seed N] [--workers N] [--threads N] [--data DIR] [--json FILE] [--Section:Key=value]</c>: scores a registered
/// classifier or segmenter in this process (no web server), on the registry and datasets of the data folder the server uses
/// (<c>Storage:DataDirectory</c>, from the same configuration sources, or <c>--data</c>). An empty registry is seeded with the
/// bundled default models first, as the server does at start-up (<c>Models:SeedDefaults</c>), so <c>--model default:classifier</c>
/// works on a fresh clone. Prints the report (<see cref="EvaluationReport"/>); <c>--json</c> also writes the result.
/// </summary>
public static class EvaluateCommand
{
    public const string Usage =
        "evaluate --model ID|NAME|default:classifier|default:segmenter [--dataset ID] [--split test|train] [--max-images N] " +
        "[--batch-size N] [--seed N] [--workers N] [--threads N] [--data DIR] [--json FILE] [--Section:Key=value ...]";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// Runs the command; 0 on success, 2 on bad arguments or a model or dataset that cannot be scored, 1 when the evaluation
    /// fails (an unreadable package or image), 130 when interrupted.
    /// </summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? errors = null)
    {
        output ??= Console.Out;
        errors ??= Console.Error;
        string? model = null, dataset = null, json = null, data = null;
        string split = ModelEvaluator.Test;
        int? maxImages = null;
        int batchSize = 32, seed = 0, workers = 2, threads = 0;
        var settings = new List<string>();
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                int Int(int min) => int.TryParse(Next(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min
                    ? v : throw new ArgumentException($"{args[i - 1]} needs a whole number of at least {min}, not '{args[i]}'.");
                switch (args[i])
                {
                    case "--model": model = Next(); break;
                    case "--dataset": dataset = Next(); break;
                    case "--split": split = Next(); break;
                    case "--max-images": maxImages = Int(1); break;
                    case "--batch-size": batchSize = Int(1); break;
                    case "--seed": seed = Int(0); break;
                    case "--workers": workers = Int(1); break;
                    case "--threads": threads = Int(1); break;
                    case "--data": data = Path.GetFullPath(Next()); break;
                    case "--json": json = Path.GetFullPath(Next()); break;
                    // Configuration, as the server takes it on its command line (--Ml:Device=cpu).
                    case var setting when setting.StartsWith("--", StringComparison.Ordinal) && setting.Contains(':') && setting.Contains('='):
                        settings.Add(setting);
                        break;
                    default: throw new ArgumentException($"Unknown option {args[i]}.");
                }
            }
            if (model is null) throw new ArgumentException("--model is required.");
            if (json is not null && !Directory.Exists(Path.GetDirectoryName(json)))
                throw new ArgumentException($"--json: the folder {Path.GetDirectoryName(json)} does not exist.");
        }
        catch (ArgumentException e)
        {
            errors.WriteLine($"{e.Message}\nUsage: {Usage}");
            return 2;
        }

        // The server's own configuration sources (appsettings.json, environment variables such as Storage__DataDirectory),
        // with the options on top.
        var builder = WebApplication.CreateBuilder([
            "--Logging:LogLevel:Default=Warning", .. settings,
            .. data is null ? Array.Empty<string>() : [$"--Storage:DataDirectory={data}"],
            .. threads > 0 ? [$"--Ml:Threads={threads}"] : Array.Empty<string>()]);
        builder.AddServiceDefaults();
        builder.Services.AddModelRegistry();
        builder.Services.AddTrainingJobs(builder.Configuration);
        using var app = builder.Build();
        var evaluator = app.Services.GetRequiredService<ModelEvaluator>();
        var root = app.Services.GetRequiredService<DataDirectory>().Root;

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler stop = (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        Console.CancelKeyPress += stop;
        try
        {
            var target = evaluator.Check(model, dataset, split, seed);
            errors.WriteLine($"data folder {root}");
            var result = evaluator.Run(target, new EvaluationSettings(maxImages, batchSize, seed, workers), new Progress(errors), cts.Token);
            output.Write(EvaluationReport.Text(result));
            if (json is not null)
            {
                AtomicFile.WriteAllText(json, JsonSerializer.Serialize(result, Json));
                output.WriteLine($"\nwrote {json}");
            }
            return 0;
        }
        catch (DomainException e)
        {
            errors.WriteLine(e.Message);
            return 2;
        }
        catch (Exception e) when (e is CheckpointException or DatasetException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            // An unreadable model package or dataset item, a preprocessing that cannot be applied, a file that cannot be written.
            errors.WriteLine($"The evaluation failed: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            errors.WriteLine("Cancelled.");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= stop;
        }
    }

    /// <summary>Progress on the error stream (the report alone goes to the output): the start line, then images done every ~10 s.</summary>
    private sealed class Progress(TextWriter errors) : IProgress<TrainingProgress>
    {
        private readonly DateTime started = DateTime.UtcNow;
        private DateTime last = DateTime.MinValue;

        public void Report(TrainingProgress p)
        {
            foreach (var line in p.Log) errors.WriteLine(line);
            if (p.Event != TrainingEvent.Step || DateTime.UtcNow - last < TimeSpan.FromSeconds(10)) return;
            last = DateTime.UtcNow;
            var metrics = string.Join(" ", p.Metrics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value:F3}")));
            errors.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{DateTime.UtcNow - started:hh\\:mm\\:ss}] batch {p.Step}/{p.Steps}, {p.ImagesPerSecond:F0} img/s, eta {p.EtaSeconds ?? 0:F0} s {metrics}"));
        }
    }
}
