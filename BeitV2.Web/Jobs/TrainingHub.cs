using BeitV2.Ml.Training;
using BeitV2.Web.Infrastructure;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace BeitV2.Web.Jobs;

/// <summary>
/// <c>/hubs/training</c>: clients call <c>Subscribe(jobId)</c> / <c>Unsubscribe(jobId)</c> or
/// <c>SubscribeAll()</c> / <c>UnsubscribeAll()</c>; the server sends <c>progress</c>, <c>status</c> and <c>log</c>.
/// Messages go to the job's group and to the all-jobs group, so a connection is never in both at once
/// (it would receive every message twice): while subscribed to all, its per-job subscriptions are only
/// remembered (in the connection's items) and restored by <c>UnsubscribeAll</c>.
/// With an API key configured, negotiate and every transport need it (header or, for WebSockets and SSE, <c>access_token</c>).
/// </summary>
[Authorize(Policy = ApiKeyAuthentication.Policy)]
public sealed class TrainingHub : Hub
{
    public const string AllGroup = "jobs:all";
    public static string JobGroup(string jobId) => "job:" + jobId;

    private const string AllKey = "beitv2.all";
    private const string JobsKey = "beitv2.jobs";

    private bool SubscribedToAll => Context.Items.ContainsKey(AllKey);

    private HashSet<string> JobSubscriptions
    {
        get
        {
            if (Context.Items.TryGetValue(JobsKey, out var set) && set is HashSet<string> jobs) return jobs;
            jobs = new HashSet<string>(StringComparer.Ordinal);
            Context.Items[JobsKey] = jobs;
            return jobs;
        }
    }

    public async Task Subscribe(string jobId)
    {
        // Unknown ids are accepted (another server may have just created the job); they simply get no messages.
        if (string.IsNullOrWhiteSpace(jobId) || jobId.Length > 100) return;
        if (!JobSubscriptions.Add(jobId) || SubscribedToAll) return;
        await Groups.AddToGroupAsync(Context.ConnectionId, JobGroup(jobId));
    }

    public async Task Unsubscribe(string jobId)
    {
        if (string.IsNullOrEmpty(jobId) || !JobSubscriptions.Remove(jobId)) return;
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, JobGroup(jobId));
    }

    public async Task SubscribeAll()
    {
        if (SubscribedToAll) return;
        Context.Items[AllKey] = true;
        // Join "all" before leaving the job groups: a message in between may arrive twice, never not at all.
        await Groups.AddToGroupAsync(Context.ConnectionId, AllGroup);
        foreach (var jobId in JobSubscriptions) await Groups.RemoveFromGroupAsync(Context.ConnectionId, JobGroup(jobId));
    }

    public async Task UnsubscribeAll()
    {
        if (!Context.Items.Remove(AllKey)) return;
        foreach (var jobId in JobSubscriptions) await Groups.AddToGroupAsync(Context.ConnectionId, JobGroup(jobId));
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, AllGroup);
    }
}

/// <param name="Epoch">the epoch in progress, counted from 1 like everything a person reads (the trainer counts from 0).</param>
public sealed record ProgressMessage(string JobId, string Type, string Status, int Epoch, int Epochs, long Step, long Steps, double? Loss,
    double? Lr, double ImagesPerSecond, double? EtaSeconds, IReadOnlyDictionary<string, double?> Metrics);

public sealed record StatusMessage(string JobId, string Status, string? Error);

public sealed record LogMessage(string JobId, string Line);

/// <summary>Sends the hub messages to the job's subscribers and to <c>SubscribeAll</c> clients. Failures to send are logged, never thrown.</summary>
public sealed class TrainingBroadcaster(IHubContext<TrainingHub> hub, ILogger<TrainingBroadcaster> logger)
{
    public void Progress(JobRecord job, TrainingProgress p) => Send(job.Id, "progress", new ProgressMessage(job.Id, job.Type.Name(), job.Status,
        p.Epoch + 1, p.Epochs, p.Step, p.Steps, Finite(p.Loss), Finite(p.LearningRate), p.ImagesPerSecond, p.EtaSeconds,
        p.Metrics.ToDictionary(kv => kv.Key, kv => Finite(kv.Value))));

    public void Status(JobRecord job) => Send(job.Id, "status", new StatusMessage(job.Id, job.Status, job.Error));

    public void Log(string jobId, string line) => Send(jobId, "log", new LogMessage(jobId, line));

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;

    private void Send(string jobId, string method, object message)
    {
        try
        {
            hub.Clients.Groups(TrainingHub.JobGroup(jobId), TrainingHub.AllGroup).SendAsync(method, message)
                .ContinueWith(t => logger.LogWarning(t.Exception, "Could not send {Method} of job {Id}", method, jobId),
                    TaskContinuationOptions.OnlyOnFaulted);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not send {Method} of job {Id}", method, jobId);
        }
    }
}
