using System.Globalization;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Web.Domains;
using BeitV2.Web.Errors;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Commands;

/// <summary>
/// <c>dotnet run -c Release --project BeitV2.Web -- domain-auroc [--model ID|NAME|default:KIND ...] [--images N] [--crops N]
/// [--photos DIR] [--seed N] [--data DIR]</c>: how well each model's stored out-of-domain score separates in-domain test
/// images it was neither fitted nor calibrated on from photos (<c>wwwroot/samples/*.jpg</c> by default), whole and as
/// random crops with flips (<see cref="DomainMeasure"/>). Without <c>--model</c>, every registered model with a fit.
/// </summary>
public static class DomainAurocCommand
{
    public const string Usage = "domain-auroc [--model ID|NAME|default:KIND ...] [--images N] [--crops N] [--photos DIR] [--seed N] [--data DIR] [--Section:Key=value ...]";

    public static int Run(string[] args, TextWriter? output = null, TextWriter? errors = null)
    {
        output ??= Console.Out;
        errors ??= Console.Error;
        var models = new List<string>();
        string? data = null, photos = null;
        int images = 1000, crops = 20, seed = 0;
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
                    case "--model": models.Add(Next()); break;
                    case "--images": images = Int(1); break;
                    case "--crops": crops = Int(0); break;
                    case "--seed": seed = Int(0); break;
                    case "--photos": photos = Path.GetFullPath(Next()); break;
                    case "--data": data = Path.GetFullPath(Next()); break;
                    case var setting when setting.StartsWith("--", StringComparison.Ordinal) && setting.Contains(':') && setting.Contains('='):
                        settings.Add(setting);
                        break;
                    default: throw new ArgumentException($"Unknown option {args[i]}.");
                }
            }
            photos ??= Path.Combine(WebRoot.Locate(), "samples");
            if (!Directory.Exists(photos)) throw new ArgumentException($"--photos: the folder {photos} does not exist.");
        }
        catch (ArgumentException e)
        {
            errors.WriteLine($"{e.Message}\nUsage: {Usage}");
            return 2;
        }
        var photoPaths = Directory.GetFiles(photos, "*.jpg").Order(StringComparer.Ordinal).ToList();

        using var app = CommandHost.Build(settings, data);
        using var cts = CommandHost.CancelOnCtrlC();
        try
        {
            var registry = app.Services.GetRequiredService<ModelRegistry>();
            var evaluator = app.Services.GetRequiredService<ModelEvaluator>();
            var targets = models.Count > 0
                ? models.Select(m => evaluator.ResolveModel(m)).ToList()
                : registry.List().Where(m => m.Domain?.OutOfDomain is not null).ToList();
            if (targets.Count == 0) throw new InvalidRequestException("No registered model has an out-of-domain fit; run fit-domain first.");
            errors.WriteLine($"{photoPaths.Count} photos from {photos} ({string.Join(", ", photoPaths.Select(Path.GetFileName))}), {crops} random crops each");
            output.WriteLine("| model | kind | in-domain test images | AUROC photos | AUROC crops | flagged: in-domain / photos / crops |");
            output.WriteLine("|---|---|---|---|---|---|");
            var measure = app.Services.GetRequiredService<DomainMeasure>();
            foreach (var info in targets)
            {
                var m = measure.Run(info.Id, images, photoPaths, crops, seed, cts.Token);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {m.Model} | {info.Kind} | {m.InDomain} ({m.Dataset}) | {m.AurocPhotos:0.000} ({m.Photos}) | {(m.AurocCrops is { } c ? c.ToString("0.000", CultureInfo.InvariantCulture) : "–")} ({m.Crops}) | " +
                    $"{m.FlaggedInDomain:P1} / {m.FlaggedPhotos:P0} / {(m.FlaggedCrops is { } f ? f.ToString("P1", CultureInfo.InvariantCulture) : "–")} |"));
                errors.WriteLine($"{m.Model}: {m.Seconds} s");
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
            errors.WriteLine($"The measurement failed: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            errors.WriteLine("Cancelled.");
            return 130;
        }
    }
}
