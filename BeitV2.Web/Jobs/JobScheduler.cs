using System.Collections.Concurrent;
using Hangfire;
using Hangfire.States;
using BeitV2.Web.Errors;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Queues jobs on Hangfire's "training" queue and cancels running ones. Every enqueue gets a new
/// attempt token stored in the job record: only the delivery carrying the current token runs, so a
/// re-delivered old Hangfire job (after a restart) cannot run a second copy.
/// </summary>
public sealed class JobScheduler(JobStore store, IBackgroundJobClient hangfire, TrainingBroadcaster broadcast,
    Microsoft.Extensions.Options.IOptions<JobsOptions> options, ILogger<JobScheduler> logger)
{
    /// <summary>The queue is shared with other servers (PostgreSQL), not embedded in this process (SQLite).</summary>
    public bool SharedStorage { get; } = !options.Value.Storage.Trim().Equals("sqlite", StringComparison.OrdinalIgnoreCase);

    public const string Queue = "training";
    private readonly ConcurrentDictionary<string, CancellationTokenSource> running = new(StringComparer.Ordinal);

    /// <summary>Set while the host stops: running jobs are interrupted (checkpoint, back to queued), not cancelled.</summary>
    public bool ShuttingDown { get; private set; }

    public JobRecord Enqueue(string jobId)
    {
        var attempt = Guid.NewGuid().ToString("N");
        var job = store.Update(jobId, j => j with
        {
            Status = JobStatus.Queued, Attempt = attempt, FinishedAt = null, Error = null, RunId = null, CancelRequested = false,
        });
        hangfire.Create<JobRunner>(r => r.Run(jobId, attempt, CancellationToken.None), new EnqueuedState(Queue));
        logger.LogInformation("Job {Id} queued (attempt {Attempt})", jobId, attempt);
        broadcast.Status(job);
        return job;
    }

    /// <summary>
    /// Cancels a queued or running job; 409 when it has finished. A running job gets a cancel request in
    /// its record, which the server running it (this one or another) sees within about a second: it
    /// saves a checkpoint and the job becomes cancelled.
    /// </summary>
    public JobRecord Cancel(string jobId)
    {
        var job = store.Get(jobId);
        if (JobStatus.IsFinished(job.Status))
            throw new ConflictException($"Job '{jobId}' has already finished ({job.Status}).");
        var updated = store.Update(jobId, j => j.Status switch
        {
            JobStatus.Queued => j with { Status = JobStatus.Cancelled, FinishedAt = DateTimeOffset.UtcNow, Attempt = "" },
            JobStatus.Running when !j.CancelRequested => j with { CancelRequested = true },
            _ => null,
        });
        if (updated.Status == JobStatus.Cancelled) broadcast.Status(updated);
        else if (running.TryGetValue(jobId, out var cts)) cts.Cancel(); // here: no need to wait for the lease tick
        return updated;
    }

    /// <summary>Re-queues a cancelled or failed job; it continues from its newest checkpoint.</summary>
    public JobRecord Resume(string jobId)
    {
        var job = store.Get(jobId);
        if (job.Status is not (JobStatus.Cancelled or JobStatus.Failed))
            throw new ConflictException($"Job '{jobId}' is {job.Status}; only cancelled or failed jobs can be resumed.");
        return Enqueue(jobId);
    }

    /// <summary>
    /// Embedded storage only, on start-up: jobs the previous process left queued or running are queued
    /// again (new attempt), once. With shared storage the queue itself re-delivers a dead server's job
    /// (the invisibility timeout) and a stopping server re-queues its jobs, so nothing is recovered at
    /// start-up: a second server starting must not take over jobs another one is running.
    /// </summary>
    public void Recover()
    {
        foreach (var job in store.List().Where(j => j.Status is JobStatus.Queued or JobStatus.Running))
        {
            logger.LogInformation("Recovering job {Id} (was {Status})", job.Id, job.Status);
            Enqueue(job.Id);
        }
    }

    internal CancellationTokenSource Register(string jobId, CancellationToken hangfireToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(hangfireToken);
        running[jobId] = cts;
        return cts;
    }

    internal void Unregister(string jobId, CancellationTokenSource cts)
    {
        running.TryRemove(new KeyValuePair<string, CancellationTokenSource>(jobId, cts));
        cts.Dispose();
    }

    /// <summary>From now on a stopped run counts as interrupted (back to the queue), not cancelled.</summary>
    public void MarkShuttingDown() => ShuttingDown = true;

    /// <summary>Cancels every running job's token: each checkpoints and stops.</summary>
    public void InterruptRunning()
    {
        foreach (var cts in running.Values)
            try { cts.Cancel(); } catch (ObjectDisposedException) { }
    }
}
