using BeitV2.Ml.Training;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Runs jobs of type <c>index</c>. Collections are built on the jobs (a collection starts one), so the jobs reach them
/// only through this interface, which <c>BeitV2.Web.Collections</c> implements: the namespaces depend one way.
/// </summary>
public interface IIndexJobs
{
    /// <summary>Embeds the job's collection's dataset images that are not in it yet, checkpointing the items done.</summary>
    IndexJobOutcome Run(JobRecord job, IProgress<TrainingProgress> progress, Action<string> log, CancellationToken ct);
}

/// <summary>How an index job ended: stopped by a cancel (its items so far kept), or done with its result.</summary>
public sealed record IndexJobOutcome(bool Cancelled, IndexJobResult? Result);
