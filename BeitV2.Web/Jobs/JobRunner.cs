using System.Globalization;
using System.Text.Json.Nodes;
using BeitV2.Ml.Training;
using BeitV2.Web.Inference;
using BeitV2.Web.Registry;
using Hangfire;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Runs one job in a Hangfire worker: builds the trainer, runs it with a progress sink that updates
/// <c>job.json</c>, appends to <c>metrics.jsonl</c> and broadcasts over SignalR, and on success
/// registers the output model.
/// </summary>
public sealed class JobRunner(JobStore store, JobScheduler scheduler, JobPlanner planner, ModelRegistry registry,
    TrainingBroadcaster broadcast, ILogger<JobRunner> logger)
{
    private JobStore Store => store;
    private TrainingBroadcaster Broadcast => broadcast;

    [AutomaticRetry(Attempts = 0)]
    [Queue(JobScheduler.Queue)]
    public void Run(string jobId, string attempt, CancellationToken cancellationToken)
    {
        if (store.Find(jobId) is null)
        {
            logger.LogWarning("Hangfire delivered unknown job {Id}; ignored", jobId);
            return;
        }
        var cts = scheduler.Register(jobId, cancellationToken);
        try
        {
            var started = false;
            var job = store.Update(jobId, j =>
            {
                if (j.Attempt != attempt || j.Status != JobStatus.Queued) return null;
                started = true;
                return j with
                {
                    Status = JobStatus.Running, StartedAt = j.StartedAt ?? DateTimeOffset.UtcNow, FinishedAt = null, Error = null, Runs = j.Runs + 1,
                };
            });
            if (!started)
            {
                logger.LogInformation("Skipping a stale delivery of job {Id} (attempt {Attempt}; the job is {Status})", jobId, attempt, job.Status);
                return;
            }
            broadcast.Status(job);
            Execute(job, cts.Token);
        }
        finally
        {
            scheduler.Unregister(jobId, cts);
        }
    }

    private void Execute(JobRecord job, CancellationToken ct)
    {
        var checkpoints = store.CheckpointDirectory(job.Id);
        var latest = Path.Combine(checkpoints, "checkpoint-latest");
        var resumeFrom = File.Exists(Path.Combine(latest, TrainingCheckpoint.StateFile)) ? latest : null;
        var sink = new Sink(this, job.Id);
        using var heartbeat = new Timer(_ => sink.Heartbeat(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        try
        {
            using var plan = planner.Build(job, checkpoints, resumeFrom);
            if (resumeFrom is not null) Log(job.Id, $"resuming from {resumeFrom}");
            var result = plan.Run(sink, ct);
            heartbeat.Change(Timeout.Infinite, Timeout.Infinite);
            if (result.Status == TrainingStatus.Cancelled)
            {
                var interrupted = scheduler.ShuttingDown;
                var done = store.Update(job.Id, j => j with
                {
                    Status = interrupted ? JobStatus.Queued : JobStatus.Cancelled,
                    FinishedAt = interrupted ? null : DateTimeOffset.UtcNow,
                });
                logger.LogInformation("Job {Id} {What} at step {Step}", job.Id, interrupted ? "interrupted by shutdown" : "cancelled", result.Step);
                broadcast.Status(done);
                return;
            }
            var name = job.Name ?? $"{job.Type} {job.Id}";
            var lineage = new ModelLineage(job.Id, result.CheckpointPath, job.BaseModel ?? job.Teacher,
                [$"trained by job {job.Id} ({job.Type}) on dataset {job.Dataset}, {result.Step} steps"]);
            var info = registry.Add(result.Model, name, $"job:{job.Id}", plan.Labels, lineage);
            var finished = store.Update(job.Id, j => j with
            {
                Status = JobStatus.Succeeded, FinishedAt = DateTimeOffset.UtcNow, OutputModel = info.Id,
                LastMetrics = result.Metrics.Count > 0 ? new Dictionary<string, double>(result.Metrics) : j.LastMetrics,
            });
            logger.LogInformation("Job {Id} succeeded; model {Model}", job.Id, info.Id);
            broadcast.Status(finished);
        }
        catch (Exception e)
        {
            heartbeat.Change(Timeout.Infinite, Timeout.Infinite);
            var message = e switch
            {
                TrainingDivergedException d => d.Message,
                ArgumentException or InvalidOperationException or IOException => e.Message,
                _ => $"{e.GetType().Name}: {e.Message}",
            };
            logger.LogWarning(e, "Job {Id} failed", job.Id);
            var failed = store.Update(job.Id, j => j with { Status = JobStatus.Failed, FinishedAt = DateTimeOffset.UtcNow, Error = message });
            Log(job.Id, "error: " + message);
            broadcast.Status(failed);
        }
    }

    /// <summary>Broadcasts a log line and keeps it in the job's <c>log.txt</c> (read back by <c>GET /api/v1/jobs/{id}/log</c>).</summary>
    private void Log(string jobId, string line)
    {
        JobArtifacts.AppendLog(store.JobDirectory(jobId), line);
        broadcast.Log(jobId, line);
    }

    /// <summary>The trainer's synchronous progress sink.</summary>
    private sealed class Sink(JobRunner owner, string jobId) : IProgress<TrainingProgress>
    {
        private readonly Lock gate = new();
        private TrainingProgress? last;
        private DateTime lastSent = DateTime.UtcNow;

        public void Report(TrainingProgress p)
        {
            var store = owner.Store;
            var fraction = p.Steps > 0 ? Math.Clamp((double)p.Step / p.Steps, 0, 1) : 0;
            var job = store.Update(jobId, j =>
            {
                var checkpoints = j.Checkpoints;
                if (p.Event == TrainingEvent.Checkpoint)
                {
                    var path = Path.Combine(store.CheckpointDirectory(jobId), "checkpoint-latest");
                    checkpoints = [.. checkpoints.Where(c => c.Path != path), new JobCheckpoint(p.Step, p.Epoch, path, DateTimeOffset.UtcNow)];
                }
                return j with
                {
                    Progress = new JobProgress(p.Epoch, p.Epochs, p.Step, p.Steps, fraction, p.EtaSeconds),
                    LastMetrics = new Dictionary<string, double>(p.Metrics), Checkpoints = checkpoints,
                };
            });
            if (p.Event is TrainingEvent.Step or TrainingEvent.EpochEnd or TrainingEvent.Evaluation)
            {
                var entry = new JsonObject
                {
                    ["step"] = p.Step, ["time"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                    ["event"] = p.Event.ToString().ToLowerInvariant(), ["epoch"] = p.Epoch,
                    ["loss"] = Finite(p.Loss), ["lr"] = Finite(p.LearningRate), ["imagesPerSecond"] = p.ImagesPerSecond,
                };
                var metrics = new JsonObject();
                foreach (var (k, v) in p.Metrics) metrics[k] = Finite(v);
                entry["metrics"] = metrics;
                store.AppendMetrics(jobId, entry);
            }
            lock (gate)
            {
                last = p;
                lastSent = DateTime.UtcNow;
            }
            if (p.CodeCounts is { } counts) JobArtifacts.WriteCodebook(jobId, store.JobDirectory(jobId), p.Step, p.Epoch, counts);
            owner.Broadcast.Progress(job, p);
            foreach (var line in p.Log) owner.Log(jobId, line);
        }

        /// <summary>Re-sends the last progress when the trainer has been quiet (a long step or an evaluation), so clients hear at least every ~1.5 s.</summary>
        public void Heartbeat()
        {
            TrainingProgress? p;
            lock (gate)
            {
                if (last is null || DateTime.UtcNow - lastSent < TimeSpan.FromSeconds(1.5)) return;
                p = last;
                lastSent = DateTime.UtcNow;
            }
            if (owner.Store.Find(jobId) is { Status: JobStatus.Running } job) owner.Broadcast.Progress(job, p);
        }

        private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
    }
}
