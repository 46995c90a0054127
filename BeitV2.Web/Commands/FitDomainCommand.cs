using System.Globalization;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Web.Datasets;
using BeitV2.Web.Domains;
using BeitV2.Web.Errors;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Commands;

/// <summary>
/// <c>dotnet run -c Release --project BeitV2.Web -- fit-domain --model ID|NAME|default:KIND [--dataset ID] [--images N]
/// [--calibration-images N] [--data DIR] [--Section:Key=value]</c>: writes a registered model's domain (the dataset's name,
/// classes and kind of image, and the quality its training recorded) and fits its out-of-domain score
/// (<see cref="DomainFitter"/>) into its package, without touching its weights. The dataset defaults to Fashion-MNIST
/// (its segmentation scenes for a segmenter). Runs in this process, on the data folder the server uses, seeded with the
/// bundled models as the server is.
/// </summary>
public static class FitDomainCommand
{
    public const string Usage =
        "fit-domain --model ID|NAME|default:KIND [--dataset ID] [--images N] [--calibration-images N] [--data DIR] [--Section:Key=value ...]";

    /// <summary>0 on success, 2 on bad arguments or an unknown model or dataset, 1 when the fit fails, 130 when interrupted.</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? errors = null)
    {
        output ??= Console.Out;
        errors ??= Console.Error;
        string? model = null, dataset = null, data = null;
        int images = DomainFitSettings.DefaultFitImages, calibration = DomainFitSettings.DefaultCalibrationImages;
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
                    case "--images": images = Int(2); break;
                    case "--calibration-images": calibration = Int(1); break;
                    case "--data": data = Path.GetFullPath(Next()); break;
                    case var setting when setting.StartsWith("--", StringComparison.Ordinal) && setting.Contains(':') && setting.Contains('='):
                        settings.Add(setting);
                        break;
                    default: throw new ArgumentException($"Unknown option {args[i]}.");
                }
            }
            if (model is null) throw new ArgumentException("--model is required.");
        }
        catch (ArgumentException e)
        {
            errors.WriteLine($"{e.Message}\nUsage: {Usage}");
            return 2;
        }

        using var app = CommandHost.Build(settings, data);
        using var cts = CommandHost.CancelOnCtrlC();
        try
        {
            var info = app.Services.GetRequiredService<ModelEvaluator>().ResolveModel(model);
            var registry = app.Services.GetRequiredService<ModelRegistry>();
            var datasetId = dataset?.Trim() ?? (info.Kind == ApiModelKinds.Segmenter ? DatasetCatalog.FashionMnistSeg : DatasetCatalog.FashionMnist);
            var set = app.Services.GetRequiredService<DatasetCatalog>().Get(datasetId);
            // The quality its training recorded (the "metrics:" note of a job or pipeline stage), measured on the test split.
            var quality = DatasetDomains.Quality(DatasetDomains.MetricsInNotes(info.Lineage), info.Kind, set);
            errors.WriteLine($"fitting {info.Id} ({info.Kind}) on {set.Name}: {images} training images, {calibration} held-out images");
            var outcome = app.Services.GetRequiredService<DomainFitter>().FitAndStore(info.Id, set.Id, quality,
                new DomainFitSettings(images, calibration), cts.Token);
            var d = outcome.Domain;
            output.WriteLine($"{info.Id}: {d.Dataset}; {d.InputKind}");
            output.WriteLine($"  {d.Description}");
            if (d.Quality is { } q) output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  quality: {q.Metric} {q.Value:0.####} on the {q.Split} split"));
            output.WriteLine(outcome.Fit is { } fit
                ? string.Create(CultureInfo.InvariantCulture,
                    $"  out-of-domain fit: {fit.Info.Dim}-value {fit.Info.Feature} feature, {fit.Info.Classes} class mean(s), shrinkage {fit.Info.Shrinkage:0.####}, " +
                    $"{fit.Info.FitImages} + {fit.Info.CalibrationImages} images ({fit.Info.Engine}), warning past distance {fit.Calibration.ThresholdDistance:0.###}; {outcome.Seconds} s")
                : "  no out-of-domain fit: the model has no pooled feature");
            output.WriteLine($"  written to {registry.PackageDirectory(info.Id)}");
            return 0;
        }
        catch (DomainException e)
        {
            errors.WriteLine(e.Message);
            return 2;
        }
        catch (Exception e) when (e is CheckpointException or DatasetException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            errors.WriteLine($"The fit failed: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            errors.WriteLine("Cancelled.");
            return 130;
        }
    }
}
