using System.Text.Json;
using BeitV2.Ml.Training;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Runs jobs of type <c>pipeline</c>. The pipeline is built on the jobs (each of its stages is a job that
/// <see cref="JobPlanner"/> builds), so the jobs reach it only through this interface, which
/// <c>BeitV2.Web.Pipeline</c> implements: the namespaces depend one way.
/// </summary>
public interface IPipelineJobs
{
    /// <summary>Checks the <c>config</c> of a pipeline job request; a bad one is a 400.</summary>
    void CheckConfig(JsonElement? config);

    /// <summary>Runs the job's stages in turn in <paramref name="jobDirectory"/>, skipping the ones an earlier run finished.</summary>
    PipelineJobOutcome Run(JobRecord job, string jobDirectory, IProgress<TrainingProgress> progress, Action<string> log, CancellationToken ct);
}

/// <summary>How a pipeline job ended: its output model, the metrics of every stage (<c>stage.metric</c>) and the results table.</summary>
public sealed record PipelineJobOutcome(bool Cancelled, string? OutputModel, IReadOnlyDictionary<string, double> Metrics, string? Report);
