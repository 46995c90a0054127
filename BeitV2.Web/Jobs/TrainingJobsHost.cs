using Hangfire;

namespace BeitV2.Web.Jobs;

/// <summary><c>Jobs:*</c>: where the Hangfire queue lives.</summary>
public sealed class JobsOptions
{
    public const string Section = "Jobs";
    /// <summary><c>sqlite</c> (embedded, in <c>{data}/jobs/hangfire.db</c>) or <c>postgres</c>.</summary>
    public string Storage { get; set; } = "sqlite";
    /// <summary>PostgreSQL connection string when <see cref="Storage"/> is <c>postgres</c>.</summary>
    public string? ConnectionString { get; set; }
    /// <summary>How often idle workers look for a queued job.</summary>
    public int QueuePollIntervalMs { get; set; } = 200;
    /// <summary>Concurrent training jobs; 0 = one per training device (<c>Ml:TrainingDevices</c>; 1 on the CPU).</summary>
    public int Workers { get; set; }
    /// <summary>This server's name in job records (a random suffix is added); no host name or process id is shown to clients.</summary>
    public string? ServerName { get; set; }
    /// <summary>PostgreSQL: the schema Hangfire's tables live in (created when missing).</summary>
    public string Schema { get; set; } = "hangfire";
    /// <summary>PostgreSQL: seconds to wait for the database at start-up before failing with a clear message.</summary>
    public int ConnectTimeoutSeconds { get; set; } = 5;
    /// <summary>
    /// PostgreSQL: how long a fetched job stays invisible to other servers without a heartbeat. The
    /// timeout slides (renewed while the job runs), so hours-long training never runs twice; a dead
    /// server's job becomes visible again after this long.
    /// </summary>
    public int InvisibilityTimeoutSeconds { get; set; } = 300;
    /// <summary>A running job whose heartbeat (renewed every 2 s) is older than this belongs to a dead server; a re-delivery may take it over.</summary>
    public int HeartbeatTimeoutSeconds { get; set; } = 30;
    /// <summary>Tests only: lets a file in the data directory hold a running job at a step (<see cref="JobHold"/>). Off by default.</summary>
    public bool EnableTestHooks { get; set; }
}

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
