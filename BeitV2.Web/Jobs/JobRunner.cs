using System.Globalization;
using System.Text.Json.Nodes;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Training;
using BeitV2.Web.Errors;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Hangfire;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Runs one job in a Hangfire worker: claims it in the job record, builds the trainer, runs it with a
/// progress sink that updates <c>job.json</c>, appends to <c>metrics.jsonl</c> and broadcasts over
/// SignalR, and on success registers the output model.
/// </summary>
/// <remarks>
/// Exactly-once across servers: a delivery runs only when it carries the record's current attempt
/// token and the job is queued, or running with a heartbeat older than <c>Jobs:HeartbeatTimeoutSeconds</c>
/// (its server died: take over from the newest checkpoint). While the job runs, a lease timer renews
/// the heartbeat, picks up cancel requests made on any server, and stops this run without writing
/// anything if another run id has claimed the record (fencing).
/// </remarks>
public sealed class JobRunner(JobStore store, JobScheduler scheduler, JobPlanner planner, ModelRegistry registry,
    TrainingBroadcaster broadcast, ServerIdentity server, IOptions<JobsOptions> options, IPipelineJobs pipelines, ILogger<JobRunner> logger,
    JobHold hold, ModelEvaluator evaluator, Domains.TrainedDomains domains, IIndexJobs indexes, JobRunnerHooks? hooks = null)
{
    private JobStore Store => store;
    private TrainingBroadcaster Broadcast => broadcast;
    private string ServerName => server.Name;
    private ILogger Logger => logger;
    private JobHold Hold => hold;
    private TimeSpan HeartbeatTimeout => TimeSpan.FromSeconds(Math.Max(3, options.Value.HeartbeatTimeoutSeconds));

    [AutomaticRetry(Attempts = 0)]
    [Queue(JobScheduler.Queue)]
    public void Run(string jobId, string attempt, CancellationToken cancellationToken)
    {
        if (store.Find(jobId) is null)
        {
            logger.LogWarning("Hangfire delivered unknown job {Id}; ignored", jobId);
            return;
        }
        var runId = Guid.NewGuid().ToString("N");
        var job = Claim(jobId, attempt, runId, cancellationToken);
        if (job is null) return;
        // Not linked to Hangfire's token: Hangfire also fires it when the queue entry's state changes elsewhere, e.g. when
        // a server that lost this job (paused past its lease) comes back and marks the same entry finished. The record
        // decides who runs the job; cancel requests come through it, and a shutdown through JobScheduler.InterruptRunning.
        var cts = scheduler.Register(jobId, CancellationToken.None);
        try
        {
            broadcast.Status(job);
            Execute(job, runId, cts);
        }
        finally
        {
            scheduler.Unregister(jobId, cts);
        }
    }

    private enum ClaimResult { Stale, Start, TakeOver, Wait }

    /// <summary>Marks the job running under <paramref name="runId"/>; null when this delivery must not run it.</summary>
    private JobRecord? Claim(string jobId, string attempt, string runId, CancellationToken ct)
    {
        while (true)
        {
            var result = ClaimResult.Stale;
            string? previousServer = null;
            var job = store.Update(jobId, (j, now) =>
            {
                // now: the store's clock (PostgreSQL's, shared by every server), as every heartbeat it is compared with.
                if (j.Attempt != attempt || JobStatus.IsFinished(j.Status)) return null;
                if (j.Status == JobStatus.Running && j.RunId == runId)
                {
                    result = ClaimResult.Start; // this claim committed before its connection failed; the retry finds it
                    return null;
                }
                if (j.Status == JobStatus.Running && now - (j.HeartbeatAt ?? DateTimeOffset.MinValue) < HeartbeatTimeout)
                {
                    result = ClaimResult.Wait;
                    return null;
                }
                result = j.Status == JobStatus.Running ? ClaimResult.TakeOver : ClaimResult.Start;
                previousServer = j.Server;
                return j with
                {
                    Status = JobStatus.Running, StartedAt = j.StartedAt ?? now, FinishedAt = null, Error = null, Runs = j.Runs + 1,
                    Server = server.Name, RunId = runId, HeartbeatAt = now,
                };
            });
            switch (result)
            {
                case ClaimResult.Start:
                    return job;
                case ClaimResult.TakeOver:
                    logger.LogWarning("Job {Id}: server {Previous} stopped renewing its heartbeat; {Server} takes over from the newest checkpoint",
                        jobId, previousServer, server.Name);
                    Log(jobId, $"server {previousServer} stopped; {server.Name} continues the job from its newest checkpoint");
                    return job;
                case ClaimResult.Wait:
                    // Re-delivered while its server still renews the heartbeat (e.g. the queue lost the lease
                    // for a moment): never run a second copy; take over only if that server goes quiet.
                    if (ct.WaitHandle.WaitOne(TimeSpan.FromSeconds(1))) return null;
                    continue;
                default:
                    logger.LogInformation("Skipping a stale delivery of job {Id} (attempt {Attempt}; the job is {Status})", jobId, attempt, job.Status);
                    return null;
            }
        }
    }

    private void Execute(JobRecord job, string runId, CancellationTokenSource cts)
    {
        // Each run checkpoints into a folder of its own (checkpoints/run-{runId}): a run that lost the job and writes once
        // more before it notices cannot overwrite or prune what the run holding the job resumes from.
        var checkpoints = Path.Combine(store.CheckpointDirectory(job.Id), RunFolder(runId));
        var resumeFrom = ResumePoint(job);
        var sink = new Sink(this, job.Id, runId, checkpoints, cts.Token);
        using var lease = new Timer(_ => sink.Tick(cts), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        try
        {
            if (job.Type == JobType.Pipeline)
            {
                ExecutePipeline(job, runId, sink, cts, lease);
                return;
            }
            if (job.Type == JobType.Evaluate)
            {
                ExecuteEvaluation(job, runId, sink, cts, lease);
                return;
            }
            if (job.Type == JobType.Index)
            {
                ExecuteIndex(job, runId, sink, cts, lease);
                return;
            }
            if (registry.FindOutput(job.Id, OutputKey(job)) is { } registered)
            {
                // An earlier run registered the output and died before recording it: record it now, without
                // training (or evaluating, or appending metrics) again.
                lease.Change(Timeout.Infinite, Timeout.Infinite);
                Log(job.Id, $"the output model {registered.Id} was registered by an earlier run; the job is finished");
                var recorded = Finish(job.Id, runId, j => j with
                {
                    Status = JobStatus.Succeeded, FinishedAt = DateTimeOffset.UtcNow, OutputModel = registered.Id, CancelRequested = false, RunId = null,
                });
                if (recorded is not null) broadcast.Status(recorded);
                return;
            }
            using var plan = planner.Build(job, checkpoints, resumeFrom, new LeaseFence(this, job.Id, runId, sink));
            if (resumeFrom is not null) Log(job.Id, $"resuming from {resumeFrom}");
            var result = plan.Run(sink, cts.Token);
            lease.Change(Timeout.Infinite, Timeout.Infinite);
            if (sink.Lost)
            {
                logger.LogWarning("Job {Id}: another server claimed the job; this run stopped at step {Step} without writing", job.Id, result.Step);
                return;
            }
            if (result.Status == TrainingStatus.Cancelled)
            {
                Stopped(job, runId, result.Step);
                return;
            }
            var name = job.Name ?? $"{job.Type.Name()} {job.Id}";
            var lineage = new ModelLineage(job.Id, result.CheckpointPath is { } cp ? Store.RelativeToData(cp) : null, job.BaseModel ?? job.Teacher ?? job.Tokenizer,
                [$"trained by job {job.Id} ({job.Type.Name()}) on dataset {job.Dataset}, {result.Step} steps"], Output: OutputKey(job));
            // Registered under the job's lock and only while this run holds the job, and recorded in the same change: a run
            // that lost the job registers nothing, and a restart finds the model (FindOutput above) instead of training again.
            ModelInfo? registeredNow = null;
            store.Update(job.Id, (j, _) =>
            {
                if (j.RunId != runId) return null;
                registeredNow = registry.Add(result.Model, name, $"job:{job.Id}", plan.Labels, lineage, dataset: job.Dataset);
                return j with { OutputModel = registeredNow.Id };
            });
            if (registeredNow is not { } info)
            {
                logger.LogWarning("Job {Id}: another server claimed the job before its output was registered; this run registers nothing", job.Id);
                return;
            }
            hooks?.AfterOutputRegistered?.Invoke(job.Id, info.Id);
            // What the model knows, and its out-of-domain fit, from the job's dataset: stored in the package before the job succeeds.
            // The fit takes up to minutes, so the lease is renewed meanwhile (heartbeat, cancel requests); training is over and the
            // model registered, so a cancel or a shutdown now ends the fit, not the job: the model stays, without a score.
            lease.Change(TimeSpan.Zero, TimeSpan.FromSeconds(1));
            try
            {
                Log(job.Id, domains.Describe(info.Id, job.Dataset, result.Metrics, JobSettings.Parse(job.Config).Seed, cts.Token));
            }
            catch (OperationCanceledException)
            {
                Log(job.Id, $"the out-of-domain fit was interrupted (cancel or shutdown); {info.Id} has no out-of-domain score: the fit-domain command adds one");
            }
            lease.Change(Timeout.Infinite, Timeout.Infinite);
            if (sink.Lost)
            {
                logger.LogWarning("Job {Id}: another server claimed the job during the out-of-domain fit; this run records nothing more", job.Id);
                return;
            }
            var finished = Finish(job.Id, runId, j => j with
            {
                Status = JobStatus.Succeeded, FinishedAt = DateTimeOffset.UtcNow, OutputModel = info.Id, CancelRequested = false, RunId = null,
                LastMetrics = result.Metrics.Count > 0 ? new Dictionary<string, double>(result.Metrics) : j.LastMetrics,
            });
            if (finished is null) return;
            logger.LogInformation("Job {Id} succeeded; model {Model}", job.Id, info.Id);
            broadcast.Status(finished);
        }
        catch (Exception e)
        {
            lease.Change(Timeout.Infinite, Timeout.Infinite);
            if (sink.Lost || e is LostJobException)
            {
                logger.LogWarning("Job {Id}: another server claimed the job; this run stopped without writing", job.Id);
                return;
            }
            // The client reads this: words, paths relative to the data directory, no exception type names.
            var message = ClientText.Scrub(e switch
            {
                TrainingDivergedException d => d.Message,
                // A model or dataset deleted after the job was queued, an unreadable model package: the message says which.
                ArgumentException or InvalidOperationException or IOException or DomainException or CheckpointException => e.Message,
                _ => "the job stopped on an internal error; the server log has the details",
            });
            logger.LogWarning(e, "Job {Id} failed", job.Id);
            var failed = Finish(job.Id, runId, j => j with
            {
                Status = JobStatus.Failed, FinishedAt = DateTimeOffset.UtcNow, Error = message, CancelRequested = false, RunId = null,
            });
            if (failed is null) return;
            Log(job.Id, "error: " + message);
            broadcast.Status(failed);
        }
    }

    /// <summary>The run stopped on a cancel request (cancelled) or a shutdown (back to the queue, at once, for any server).</summary>
    private void Stopped(JobRecord job, string runId, long step)
    {
        var cancelRequested = store.Find(job.Id)?.CancelRequested == true;
        var interrupted = scheduler.ShuttingDown && !cancelRequested;
        var done = Finish(job.Id, runId, j => j with
        {
            Status = interrupted ? JobStatus.Queued : JobStatus.Cancelled,
            FinishedAt = interrupted ? null : DateTimeOffset.UtcNow, CancelRequested = false, RunId = null,
        });
        logger.LogInformation("Job {Id} {What} at step {Step}", job.Id, interrupted ? "interrupted by shutdown" : "cancelled", step);
        if (done is null) return;
        broadcast.Status(done);
        // Shared queue: hand the job back at once, so another server continues it now. Embedded queue: this
        // process re-queues it when it starts again (JobScheduler.Recover).
        if (interrupted && scheduler.SharedStorage) scheduler.Enqueue(job.Id);
    }

    /// <summary>A <c>pipeline</c> job: every stage in turn (finished stages are skipped after a resume); its output is the fine-tuned classifier.</summary>
    private void ExecutePipeline(JobRecord job, string runId, Sink sink, CancellationTokenSource cts, Timer lease)
    {
        PipelineJobOutcome outcome;
        try
        {
            outcome = pipelines.Run(job, store.JobDirectory(job.Id), sink, line => broadcast.Log(job.Id, ClientText.Scrub(line)), cts.Token);   // stage lines may quote exception messages
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            outcome = new PipelineJobOutcome(true, null, new Dictionary<string, double>(), null); // stopped between stages
        }
        lease.Change(Timeout.Infinite, Timeout.Infinite);
        if (sink.Lost) return;
        if (outcome.Cancelled)
        {
            Stopped(job, runId, store.Find(job.Id)?.Progress.Step ?? 0);
            return;
        }
        var finished = Finish(job.Id, runId, j => j with
        {
            Status = JobStatus.Succeeded, FinishedAt = DateTimeOffset.UtcNow, OutputModel = outcome.OutputModel, CancelRequested = false, RunId = null,
            LastMetrics = new Dictionary<string, double>(outcome.Metrics),
        });
        if (finished is null) return;
        if (outcome.Report is not null) broadcast.Log(job.Id, outcome.Report);
        broadcast.Status(finished);
    }

    /// <summary>
    /// An <c>evaluate</c> job: one pass over the images (a rerun starts again; there is nothing to checkpoint), its scores
    /// stored as the record's <see cref="JobRecord.Result"/> and its headline numbers as <see cref="JobRecord.LastMetrics"/>.
    /// </summary>
    private void ExecuteEvaluation(JobRecord job, string runId, Sink sink, CancellationTokenSource cts, Timer lease)
    {
        var s = JobSettings.Parse(job.Config);
        EvaluationResult result;
        try
        {
            // Checked again: the model or dataset may have gone (or changed) since the job was queued.
            var target = evaluator.Check(job.BaseModel!, job.Dataset, s.Split ?? ModelEvaluator.Test, s.Seed);
            result = evaluator.Run(target, new EvaluationSettings(s.MaxValImages, s.BatchSize, s.Seed, s.Workers), sink, cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            lease.Change(Timeout.Infinite, Timeout.Infinite);
            if (!sink.Lost) Stopped(job, runId, store.Find(job.Id)?.Progress.Step ?? 0);
            return;
        }
        lease.Change(Timeout.Infinite, Timeout.Infinite);
        if (sink.Lost) return;
        var finished = Finish(job.Id, runId, j => j with
        {
            Status = JobStatus.Succeeded, FinishedAt = DateTimeOffset.UtcNow, CancelRequested = false, RunId = null,
            Result = result, LastMetrics = result.Headline(),
        });
        if (finished is null) return;
        logger.LogInformation("Job {Id} succeeded: {Summary}", job.Id, EvaluationReport.Summary(result));
        Log(job.Id, EvaluationReport.Summary(result));
        broadcast.Status(finished);
    }

    /// <summary>
    /// An <c>index</c> job: embeds the collection's dataset images not in it yet (a resume continues after the items its
    /// checkpoints kept), its throughput stored as the record's <see cref="JobRecord.IndexResult"/>; registers no model.
    /// </summary>
    private void ExecuteIndex(JobRecord job, string runId, Sink sink, CancellationTokenSource cts, Timer lease)
    {
        IndexJobOutcome outcome;
        try
        {
            outcome = indexes.Run(job, sink, line => Log(job.Id, line), cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            outcome = new IndexJobOutcome(true, null);
        }
        lease.Change(Timeout.Infinite, Timeout.Infinite);
        if (sink.Lost) return;
        if (outcome.Cancelled || outcome.Result is null)
        {
            Stopped(job, runId, store.Find(job.Id)?.Progress.Step ?? 0);
            return;
        }
        var result = outcome.Result;
        var finished = Finish(job.Id, runId, j => j with
        {
            Status = JobStatus.Succeeded, FinishedAt = DateTimeOffset.UtcNow, CancelRequested = false, RunId = null, IndexResult = result,
            LastMetrics = new Dictionary<string, double> { ["items"] = result.Items, ["imagesPerSecond"] = result.ImagesPerSecond },
        });
        if (finished is null) return;
        logger.LogInformation("Job {Id} indexed collection {Collection}: {Items} items, {Rate:F1} images/s", job.Id, result.Collection, result.Items,
            result.ImagesPerSecond);
        broadcast.Status(finished);
    }

    /// <summary>
    /// The job's output in the registry. A job has one output model, whatever run or attempt registered it:
    /// registering is the last step before success, and a restart (JobScheduler.Recover) re-queues the job
    /// under a new attempt token, so the key must not depend on the attempt.
    /// </summary>
    private static string OutputKey(JobRecord job) => "model";

    /// <summary>Writes the final state only while this run still holds the job; null when another run has claimed it.</summary>
    private JobRecord? Finish(string jobId, string runId, Func<JobRecord, JobRecord> change)
    {
        var held = false;
        var job = store.Update(jobId, j =>
        {
            if (j.RunId != runId) return null;
            held = true;
            return change(j);
        });
        return held ? job : null;
    }

    private sealed class LostJobException() : Exception("another server claimed the job");

    /// <summary>The folder of one run's checkpoints, under the job's <c>checkpoints/</c>.</summary>
    internal static string RunFolder(string runId) => "run-" + runId;

    /// <summary>
    /// Where a run continues: the newest checkpoint the job's record lists (only a run holding the job records one)
    /// that is still complete on disk; for a job written before runs had folders, the newest in <c>checkpoints/</c>.
    /// </summary>
    private string? ResumePoint(JobRecord job)
    {
        foreach (var c in job.Checkpoints.OrderByDescending(c => c.Step))
            if (File.Exists(Path.Combine(c.Path, TrainingCheckpoint.StateFile))) return c.Path;
        return TrainingCheckpoint.FindLatest(store.CheckpointDirectory(job.Id));
    }

    /// <summary>Whether <paramref name="runId"/> still holds the job, decided under the job's lock (a row lock in PostgreSQL).</summary>
    private bool Holds(string jobId, string runId)
    {
        var held = false;
        store.Update(jobId, (j, _) =>
        {
            held = j.RunId == runId;
            return null;
        });
        return held;
    }

    /// <summary>The trainer asks before each checkpoint save and prune: a run that lost the job stops there, having written nothing.</summary>
    private sealed class LeaseFence(JobRunner owner, string jobId, string runId, Sink sink) : ICheckpointFence
    {
        public void BeforeSave(long step) => Check();
        public void BeforePrune() => Check();

        private void Check()
        {
            if (!sink.Lost && owner.Holds(jobId, runId)) return;
            sink.MarkLost();
            throw new LostJobException();
        }
    }

    /// <summary>Broadcasts a log line and keeps it in the job's <c>log.txt</c> (read back by <c>GET /api/v1/jobs/{id}/log</c>).</summary>
    private void Log(string jobId, string line)
    {
        line = ClientText.Scrub(line);
        JobArtifacts.AppendLog(store.JobDirectory(jobId), line);
        broadcast.Log(jobId, line);
    }

    /// <summary>The trainer's synchronous progress sink, and the lease of the run.</summary>
    /// <param name="runFolder">this run's checkpoint folder (<c>checkpoints/run-{runId}</c>); pipeline and index jobs report other paths.</param>
    private sealed class Sink(JobRunner owner, string jobId, string runId, string runFolder, CancellationToken stop) : IProgress<TrainingProgress>
    {
        private readonly Lock gate = new();
        private TrainingProgress? last;
        private DateTime lastSent = DateTime.UtcNow, lastBeat = DateTime.UtcNow;

        /// <summary>Another run id is in the record: this run must stop and write nothing.</summary>
        public bool Lost { get; private set; }

        public void MarkLost() => Lost = true;

        private int ticking;

        /// <summary>
        /// Removes the checkpoints of earlier runs beside this run's folder: the other <c>run-*</c> folders and the
        /// <c>checkpoint-*</c> folders of a job written before runs had folders. Only in the job's own <c>checkpoints/</c>,
        /// and only for a checkpoint this run saved there (best effort: a folder in use is left for later).
        /// </summary>
        private void DropOtherRuns(string savedCheckpoint)
        {
            var root = Path.GetDirectoryName(runFolder)!;
            if (!string.Equals(Path.GetDirectoryName(savedCheckpoint), runFolder, StringComparison.Ordinal)
                || !string.Equals(root, owner.Store.CheckpointDirectory(jobId), StringComparison.Ordinal)) return;
            foreach (var dir in Directory.EnumerateDirectories(root))
            {
                var name = Path.GetFileName(dir);
                if (string.Equals(dir, runFolder, StringComparison.Ordinal)
                    || !(name.StartsWith("run-", StringComparison.Ordinal) || name.StartsWith("checkpoint-", StringComparison.Ordinal))) continue;
                try { Directory.Delete(dir, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }

        public void Report(TrainingProgress p)
        {
            var store = owner.Store;
            if (Lost) throw new LostJobException();
            var fraction = p.Steps > 0 ? Math.Clamp((double)p.Step / p.Steps, 0, 1) : 0;
            var held = false;
            var job = store.Update(jobId, (j, now) =>
            {
                if (j.RunId != runId) return null;
                held = true;
                var checkpoints = j.Checkpoints;
                if (p is { Event: TrainingEvent.Checkpoint, CheckpointPath: { } path })
                {
                    // This run has a checkpoint of its own now: earlier runs' folders (the one it resumed from included) go.
                    // Under the job's lock and only while this run holds it, so the run holding the job decides what stays.
                    DropOtherRuns(path);
                    // The trainer keeps the newest few and deletes older ones: list what is still on disk.
                    checkpoints = [.. checkpoints.Where(c => c.Path != path && Directory.Exists(c.Path)),
                        new JobCheckpoint(p.Step, p.Epoch + 1, path, now)];
                }
                return j with
                {
                    Progress = new JobProgress(p.Epoch + 1, p.Epochs, p.Step, p.Steps, fraction, p.EtaSeconds),   // 1-based for people (the trainer counts from 0)
                    LastMetrics = new Dictionary<string, double>(p.Metrics), Checkpoints = checkpoints, HeartbeatAt = now,
                };
            });
            if (!held)
            {
                Lost = true;
                throw new LostJobException();
            }
            if (p.Event is TrainingEvent.Step or TrainingEvent.EpochEnd or TrainingEvent.Evaluation)
            {
                var entry = new JsonObject
                {
                    ["step"] = p.Step, ["time"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                    ["event"] = p.Event.ToString().ToLowerInvariant(), ["epoch"] = p.Epoch + 1,
                    ["loss"] = Finite(p.Loss), ["lr"] = Finite(p.LearningRate), ["imagesPerSecond"] = p.ImagesPerSecond,
                    ["server"] = owner.ServerName,
                };
                var metrics = new JsonObject();
                foreach (var (k, v) in p.Metrics) metrics[k] = Finite(v);
                entry["metrics"] = metrics;
                if (!store.AppendMetrics(jobId, entry, runId))
                {
                    Lost = true;
                    throw new LostJobException();
                }
            }
            lock (gate)
            {
                last = p;
                lastSent = lastBeat = DateTime.UtcNow;
            }
            if (p.CodeCounts is { } counts) JobArtifacts.WriteCodebook(jobId, store.JobDirectory(jobId), p.Step, p.Epoch + 1, counts);
            owner.Broadcast.Progress(job, p);
            foreach (var line in p.Log) owner.Log(jobId, line);
            if (p.Event == TrainingEvent.Step) owner.Hold.WaitIfHeld(jobId, p.Step, stop);
        }

        /// <summary>
        /// Every second: renews the heartbeat when the trainer has been quiet, stops the run on a cancel
        /// request (from any server) or when another run claimed the job, and re-sends the last progress so
        /// clients hear at least every ~1.5 s during long steps and evaluations.
        /// </summary>
        public void Tick(CancellationTokenSource cts)
        {
            // A tick that waits for the database (a restart: the store retries) must not pile up behind it.
            if (Interlocked.Exchange(ref ticking, 1) == 1) return;
            try
            {
                var store = owner.Store;
                var record = store.Find(jobId);
                if (record is null || record.RunId != runId)
                {
                    Lost = true;
                    cts.Cancel();
                    return;
                }
                if (record.CancelRequested && !cts.IsCancellationRequested) cts.Cancel();
                TrainingProgress? p = null;
                var beat = false;
                lock (gate)
                {
                    var now = DateTime.UtcNow;
                    if (now - lastBeat >= TimeSpan.FromSeconds(2))
                    {
                        beat = true;
                        lastBeat = now;
                    }
                    if (last is not null && now - lastSent >= TimeSpan.FromSeconds(1.5))
                    {
                        p = last;
                        lastSent = now;
                    }
                }
                if (beat)
                    record = store.Update(jobId, (j, now) => j.RunId == runId ? j with { HeartbeatAt = now } : null);
                if (p is not null && record.Status == JobStatus.Running) owner.Broadcast.Progress(record, p);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotFoundException or StateUnavailableException)
            {
                owner.Logger.LogWarning("Job {Id}: lease tick failed: {Message}", jobId, e.Message);
            }
            finally
            {
                Volatile.Write(ref ticking, 0);
            }
        }

        private static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
    }
}
