using BeitV2.Web.Datasets;
using BeitV2.Web.Jobs;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Domains;

/// <summary>
/// The end of a training job (and of each registered pipeline stage): the output model's domain from the job's dataset and
/// final validation metrics, and its out-of-domain fit (<see cref="DomainFitter"/>), written into its package. A fit that
/// fails does not fail the job: the model keeps its domain without a score, and the job's log says why.
/// </summary>
public sealed class TrainedDomains(DomainFitter fitter, DatasetCatalog datasets, ModelRegistry registry, IOptions<JobsOptions> options,
    ILogger<TrainedDomains> logger)
{
    /// <summary>Describes (and fits) <paramref name="modelId"/>, trained on <paramref name="datasetId"/>; returns a log line for the job.</summary>
    /// <param name="seed">the job's seed: an uploaded dataset's held-out split depends on it, and the calibration must use images
    /// the model did not train on.</param>
    public string Describe(string modelId, string datasetId, IReadOnlyDictionary<string, double> metrics, int seed, CancellationToken ct)
    {
        try
        {
            var dataset = datasets.Get(datasetId);
            var info = registry.Get(modelId);
            var quality = DatasetDomains.Quality(metrics, info.Kind, dataset);
            var o = options.Value;
            // The domain first, on its own: a fit that fails or is interrupted (cancel, shutdown) leaves the model described.
            registry.UpdateDomain(modelId, DatasetDomains.For(dataset, info.Kind, info.ImageSize, quality));
            if (o.DomainFitImages <= 0)
                return $"model {modelId}: domain {dataset.Name} written; no out-of-domain fit (Jobs:DomainFitImages is 0)";
            var outcome = fitter.FitAndStore(modelId, datasetId, quality,
                new DomainFitSettings(o.DomainFitImages, Math.Max(1, o.DomainCalibrationImages), seed), ct);
            return outcome.Fit is { } fit
                ? $"model {modelId}: out-of-domain score fitted on {fit.Info.FitImages} training and calibrated on {fit.Info.CalibrationImages} held-out images of {dataset.Name} in {outcome.Seconds} s"
                : $"model {modelId}: domain {dataset.Name} written; a {info.Kind} has no pooled feature, so its answers carry no out-of-domain score";
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            logger.LogWarning(e, "Model {Id}: the out-of-domain fit failed", modelId);
            return $"model {modelId}: no out-of-domain score ({e.Message})";
        }
    }
}
