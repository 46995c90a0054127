using Hangfire;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Starts the Hangfire server (queue "training") after re-queuing the jobs a previous process left
/// unfinished, and on shutdown interrupts running jobs (they checkpoint and return to queued) before
/// stopping it. The server gets its storage and activator explicitly, not through Hangfire's global
/// configuration, so separate hosts in one process (tests) do not share state.
/// </summary>
public sealed class TrainingJobsHost(JobStorage storage, IServiceProvider services, JobScheduler scheduler, Microsoft.Extensions.Options.IOptions<JobsOptions> options,
    ServerIdentity identity, BeitV2.Web.Infrastructure.ComputeDevices devices, ILogger<TrainingJobsHost> logger) : IHostedService
{
    private BackgroundJobServer? server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!scheduler.SharedStorage) scheduler.Recover();
        // One worker per training device: each running job leases its own device (JobPlanner), so two
        // jobs never train on one GPU at once unless Jobs:Workers asks for more workers than devices.
        var workers = options.Value.Workers > 0 ? options.Value.Workers : devices.TrainingDevices.Count;
        server = new BackgroundJobServer(new BackgroundJobServerOptions
        {
            Queues = [JobScheduler.Queue],
            WorkerCount = workers,
            Activator = new ServiceProviderActivator(services),
            ShutdownTimeout = TimeSpan.FromSeconds(60),
            ServerName = identity.Name,
        }, storage);
        logger.LogInformation("Training queue started on server {Server} with {Workers} worker(s) for {Devices}, storage {Storage}",
            identity.Name, workers, string.Join(", ", devices.TrainingDevices), options.Value.Storage);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The host may call this more than once (application stopping, then disposal), and a later call must
    /// not return before the first one's shutdown is over: a caller that returned early would see a job
    /// still writing its interruption checkpoint (and a test would delete its data folder under it). So
    /// every call awaits the same shutdown.
    /// </summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (stopGate) return stopping ??= StopOnceAsync();
    }

    private readonly Lock stopGate = new();
    private Task? stopping;

    private async Task StopOnceAsync()
    {
        var running = server;
        server = null;
        // Stop fetching before interrupting: a worker that has just checkpointed and re-queued its job
        // must not pick that job up again on its way out.
        scheduler.MarkShuttingDown();
        running?.SendStop();
        scheduler.InterruptRunning();
        if (running is null) return;
        await Task.Run(running.Dispose, CancellationToken.None);
    }

    private sealed class ServiceProviderActivator(IServiceProvider services) : JobActivator
    {
        public override object ActivateJob(Type jobType) => services.GetRequiredService(jobType);
    }
}
