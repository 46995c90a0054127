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
using BeitV2.Web.Registry;

namespace BeitV2.Web.Commands;

/// <summary>
/// <c>dotnet run -c Release --project BeitV2.Web -- evaluate --model ID_OR_NAME [--dataset ID] [--split test|train]
/// [--max-images N] [--batch-size N] [--seed N] [--workers N] [--threads N] [--data DIR] [--json FILE] [--agreement-with CLASSIFIER
/// [--agreement-items N]] [--grid FILE.png [--grid-scenes N]] [--Section:Key=value]</c>: scores a registered
/// classifier or segmenter in this process (no web server), on the registry and datasets of the data folder the server uses
/// (<c>Storage:DataDirectory</c>, from the same configuration sources, or <c>--data</c>). An empty registry is seeded with the
/// bundled default models first, as the server does at start-up (<c>Models:SeedDefaults</c>), so <c>--model default:classifier</c>
/// works on a fresh clone. Prints the report (<see cref="EvaluationReport"/>); <c>--json</c> also writes the result.
/// For a segmenter, <c>--agreement-with</c> adds its agreement with a classifier on isolated Fashion-MNIST items
/// (<see cref="AgreementEvaluator"/>) and <c>--grid</c> writes a picture of its masks (<see cref="SegmentationGridMaker"/>).
/// </summary>
public static class EvaluateCommand
{
    public const string Usage =
        "evaluate --model ID|NAME|default:classifier|default:segmenter [--dataset ID] [--split test|train] [--max-images N] " +
        "[--batch-size N] [--seed N] [--workers N] [--threads N] [--data DIR] [--json FILE] " +
        "[--agreement-with CLASSIFIER [--agreement-items N]] [--grid FILE.png [--grid-scenes N]] [--Section:Key=value ...]";

    /// <summary>Items of the agreement when <c>--agreement-items</c> is not given (the pipeline's count).</summary>
    public const int DefaultAgreementItems = 1000;

    /// <summary>Scenes in the grid when <c>--grid-scenes</c> is not given.</summary>
    public const int DefaultGridScenes = 6;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>
    /// Runs the command; 0 on success, 2 on bad arguments or a model or dataset that cannot be scored, 1 when the evaluation
    /// fails (an unreadable package or image), 130 when interrupted.
    /// </summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? errors = null)
    {
        output ??= Console.Out;
        errors ??= Console.Error;
        string? model = null, dataset = null, json = null, data = null, agreementWith = null, grid = null;
        int? agreementItems = null, gridScenes = null;
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
                    case "--agreement-with": agreementWith = Next(); break;
                    case "--agreement-items": agreementItems = Int(1); break;
                    case "--grid": grid = Path.GetFullPath(Next()); break;
                    case "--grid-scenes": gridScenes = Int(1); break;
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
            if (agreementItems is not null && agreementWith is null) throw new ArgumentException("--agreement-items needs --agreement-with.");
            if (gridScenes is not null && grid is null) throw new ArgumentException("--grid-scenes needs --grid.");
            if (gridScenes > SegmentationGridMaker.MaxScenes)
                throw new ArgumentException($"--grid-scenes takes at most {SegmentationGridMaker.MaxScenes} scenes, not {gridScenes}.");
            if (grid is not null && !grid.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"--grid writes a PNG picture; give a file name ending in .png, not '{Path.GetFileName(grid)}'.");
            if (grid is not null && !Directory.Exists(Path.GetDirectoryName(grid)))
                throw new ArgumentException($"--grid: the folder {Path.GetDirectoryName(grid)} does not exist.");
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
            if ((agreementWith ?? grid) is not null && target.Model.Kind != ApiModelKinds.Segmenter)
                throw new InvalidRequestException(
                    $"--{(agreementWith is not null ? "agreement-with" : "grid")} needs a segmenter as --model; '{target.Model.Id}' is a {target.Model.Kind}.");
            var pair = agreementWith is null ? default : app.Services.GetRequiredService<AgreementEvaluator>().Check(target.Model.Id, agreementWith);
            errors.WriteLine($"data folder {root}");
            var result = evaluator.Run(target, new EvaluationSettings(maxImages, batchSize, seed, workers), new Progress(errors), cts.Token);
            if (agreementWith is not null)
            {
                var items = agreementItems ?? DefaultAgreementItems;
                errors.WriteLine($"comparing {pair.Segmenter.Id} with {pair.Classifier.Id} on the first {items} Fashion-MNIST test items, each alone");
                result = result with
                {
                    Agreement = app.Services.GetRequiredService<AgreementEvaluator>().Run(pair.Segmenter, pair.Classifier, items, cts.Token, batchSize, workers),
                };
            }
            output.Write(EvaluationReport.Text(result));
            if (grid is not null)
            {
                var picture = app.Services.GetRequiredService<SegmentationGridMaker>().Render(target, gridScenes ?? DefaultGridScenes, seed);
                AtomicFile.WriteAllBytes(grid, picture.Png);
                output.WriteLine($"\nwrote {grid}: {picture.Scenes} {target.Split} scenes of {target.Dataset.Id}, one a row; columns image | ground truth | " +
                                 $"prediction, each {picture.CellSize} px ({SegmentationGridMaker.Scale}x the model's input, nearest neighbour)");
                output.WriteLine("legend swatches, left to right: " + string.Join(", ", picture.Legend.Select(l => $"{l.Name} {l.Colour}")));
            }
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
