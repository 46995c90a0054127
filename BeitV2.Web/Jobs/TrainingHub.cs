using BeitV2.Ml.Training;
using Microsoft.AspNetCore.SignalR;

namespace BeitV2.Web.Jobs;

/// <summary>
/// <c>/hubs/training</c>: clients call <c>Subscribe(jobId)</c> / <c>Unsubscribe(jobId)</c> or
/// <c>SubscribeAll()</c>; the server sends <c>progress</c>, <c>status</c> and <c>log</c>.
/// </summary>
public sealed class TrainingHub : Hub
{
    public const string AllGroup = "jobs:all";
    public static string JobGroup(string jobId) => "job:" + jobId;

    public Task Subscribe(string jobId) => Groups.AddToGroupAsync(Context.ConnectionId, JobGroup(jobId));
    public Task Unsubscribe(string jobId) => Groups.RemoveFromGroupAsync(Context.ConnectionId, JobGroup(jobId));
    public Task SubscribeAll() => Groups.AddToGroupAsync(Context.ConnectionId, AllGroup);
}

public sealed record ProgressMessage(string JobId, string Type, string Status, int Epoch, int Epochs, long Step, long Steps, double? Loss,
    double? Lr, double ImagesPerSecond, double? EtaSeconds, IReadOnlyDictionary<string, double?> Metrics);

public sealed record StatusMessage(string JobId, string Status, string? Error);

public sealed record LogMessage(string JobId, string Line);

/// <summary>Sends the hub messages to the job's subscribers and to <c>SubscribeAll</c> clients. Failures to send are logged, never thrown.</summary>
public sealed class TrainingBroadcaster(IHubContext<TrainingHub> hub, ILogger<TrainingBroadcaster> logger)
{
    public void Progress(JobRecord job, TrainingProgress p) => Send(job.Id, "progress", new ProgressMessage(job.Id, job.Type, job.Status,
        p.Epoch, p.Epochs, p.Step, p.Steps, Finite(p.Loss), Finite(p.LearningRate), p.ImagesPerSecond, p.EtaSeconds,
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
