using System.Text.Json;
using BeitV2.Ml.Training;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Pipeline;

/// <summary>The <c>pipeline</c> jobs of the jobs API: <see cref="PipelineRunner"/> in the job's folder, its output the served classifier.</summary>
public sealed class PipelineJobs(PipelineRunner runner) : IPipelineJobs
{
    public void CheckConfig(JsonElement? config) => PipelineSettings.Parse(config);

    public PipelineJobOutcome Run(JobRecord job, string jobDirectory, IProgress<TrainingProgress> progress, Action<string> log, CancellationToken ct)
    {
        var settings = PipelineSettings.Parse(job.Config);
        var outcome = runner.Run(settings.Preset, settings.Seed, jobDirectory, job.Id, progress, log, ct);
        if (outcome.Cancelled) return new PipelineJobOutcome(true, null, new Dictionary<string, double>(), null);
        var metrics = new Dictionary<string, double>();
        foreach (var (stage, r) in outcome.State.Stages)
            foreach (var (k, v) in r.Metrics)
                metrics[$"{stage}.{k}"] = v;
        return new PipelineJobOutcome(false, outcome.Classifier, metrics, PipelineReport.Markdown(outcome.State));
    }
}
