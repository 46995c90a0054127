using System.Diagnostics;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Domain;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using BeitV2.Web.Configuration;
using BeitV2.Web.Datasets;
using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Domains;

/// <summary>How many images a fit reads.</summary>
/// <param name="FitImages">training images the Gaussians are fitted on (spread evenly over the split).</param>
/// <param name="CalibrationImages">held-out images the score is calibrated on.</param>
public sealed record DomainFitSettings(int FitImages = DomainFitSettings.DefaultFitImages, int CalibrationImages = DomainFitSettings.DefaultCalibrationImages, int Seed = 0)
{
    public const int DefaultFitImages = 5000;
    public const int DefaultCalibrationImages = 2000;
}

/// <summary>What a fit wrote: the model's domain (with the fit's reference when there is one) and the fit.</summary>
public sealed record DomainFitOutcome(ModelDomain Domain, DomainFit? Fit, double Seconds);

/// <summary>
/// Describes a registered model's domain and fits its out-of-domain detector (<see cref="DomainFit"/>) on a dataset, then
/// stores both in the package (<see cref="ModelRegistry.UpdateDomain"/>). The features are the served model's
/// (<see cref="ServedFeatures"/>: decoded, <see cref="ModelInput"/>, the configured engine), so the fit matches serving.
/// The Gaussians are fitted on training images; the score is calibrated on held-out images: the first half of the test
/// split (the second half stays unseen for measuring, <see cref="DomainMeasure"/>), or the last fifth of the training
/// images of a dataset without one.
/// </summary>
public sealed class DomainFitter(ModelRegistry registry, DatasetCatalog datasets, IOptions<InferenceOptions> inference, IOptions<MlOptions> ml,
    ComputeDevices devices, ILogger<DomainFitter> logger)
{
    /// <summary>How the fit runs the model: as the server serves it.</summary>
    public ServingOptions Serving => ModelHost.Configure(inference.Value, ml.Value, devices, OnnxExporter.Default);

    /// <summary>Describes <paramref name="modelId"/> as trained on <paramref name="datasetId"/>, fits its detector (when it has a pooled feature) and stores both.</summary>
    /// <exception cref="Errors.NotFoundException">no such model or dataset.</exception>
    public DomainFitOutcome FitAndStore(string modelId, string datasetId, ModelQuality? quality, DomainFitSettings settings, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var info = registry.Get(modelId);
        var dataset = datasets.Get(datasetId);
        var domain = DatasetDomains.For(dataset, info.Kind, info.ImageSize, quality);
        var fit = Fit(registry.PackageDirectory(modelId), dataset, settings, ct);
        var written = registry.UpdateDomain(modelId, domain, fit);
        logger.LogInformation("Model {Id}: domain {Dataset}{Fit} in {Seconds:F1} s", modelId, dataset.Name,
            fit is null ? " (no pooled feature: no out-of-domain score)" : $", out-of-domain fit on {fit.Info.FitImages} + {fit.Info.CalibrationImages} images",
            clock.Elapsed.TotalSeconds);
        return new DomainFitOutcome(written, fit, Math.Round(clock.Elapsed.TotalSeconds, 1));
    }

    /// <summary>The fit of the package's served model on <paramref name="dataset"/>; null for a model without a pooled feature (tokenizers, teachers).</summary>
    public DomainFit? Fit(string packageDirectory, DatasetInfo dataset, DomainFitSettings settings, CancellationToken ct)
    {
        ServedModel model;
        try
        {
            model = ServedModelLoader.Load(packageDirectory, Serving).Model;
        }
        catch (NotSupportedException)
        {
            return null;   // not served from images at all
        }
        using (model)
        {
            if (ServedFeatures.OperationOf(model) is null) return null;
            var (train, test) = datasets.Open(dataset.Id, null, null, settings.Seed);
            var (fitRange, heldOut, heldRange, heldSplit) = test is { Count: > 1 }
                ? ((0, train.Count), test, (0, test.Count / 2), "test (first half)")
                : ((0, train.Count * 4 / 5), train, (train.Count * 4 / 5, train.Count), "train (last fifth, not fitted on)");
            var fitIndices = Spread(fitRange, settings.FitImages);
            var heldIndices = Spread(heldRange, settings.CalibrationImages);
            if (fitIndices.Count < 2 || heldIndices.Count < 1)
                throw new InvalidOperationException($"'{dataset.Name}' has too few images for an out-of-domain fit ({train.Count} training images).");
            var samples = fitIndices.Select(train.Get).ToList();
            var fitFeatures = ServedFeatures.Compute(model, samples.Select(s => s.Image.ToImage()), ct);
            // Class-conditional means where every image has a class (Lee et al.); one Gaussian otherwise (segmentation scenes).
            var labels = samples.All(s => s.Label >= 0) ? samples.Select(s => s.Label).ToList() : null;
            samples.Clear();
            var heldFeatures = ServedFeatures.Compute(model, heldIndices.Select(i => heldOut.Get(i).Image.ToImage()), ct);
            return DomainFit.Fit(fitFeatures, labels, heldFeatures,
                new DomainFitInfo(DomainFitInfo.MeanFeature, dataset.Name, "train", heldSplit, model.Engine.Name()));
        }
    }

    /// <summary>Up to <paramref name="count"/> indices spread evenly over [start, end).</summary>
    internal static List<int> Spread((int Start, int End) range, int count)
    {
        var n = range.End - range.Start;
        if (n <= 0 || count <= 0) return [];
        if (count >= n) return Enumerable.Range(range.Start, n).ToList();
        return Enumerable.Range(0, count).Select(i => range.Start + (int)((long)i * n / count)).ToList();
    }
}
