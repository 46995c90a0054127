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
    /// <summary>
    /// PostgreSQL: the schema of this service's own tables (job records, metrics, registry defaults, the shared data volume's id), created when missing;
    /// Hangfire's queue lives in <see cref="Schema"/>.
    /// </summary>
    public string StateSchema { get; set; } = "beitv2";
    /// <summary>
    /// PostgreSQL: how long an operation on the job database is retried while the database is unreachable (a restart, a
    /// failover) before it fails; a running job waits that long instead of failing at the first dropped connection.
    /// </summary>
    public int DatabaseRetrySeconds { get; set; } = 60;
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
    /// <summary>
    /// Training images the out-of-domain fit at the end of a job reads (<see cref="Domains.DomainFitter"/>); 0 turns the fit
    /// off (the model's domain is still written).
    /// </summary>
    public int DomainFitImages { get; set; } = Domains.DomainFitSettings.DefaultFitImages;
    /// <summary>Held-out images the out-of-domain score is calibrated on at the end of a job.</summary>
    public int DomainCalibrationImages { get; set; } = Domains.DomainFitSettings.DefaultCalibrationImages;
    /// <summary>Tests only: lets a file in the data directory hold a running job at a step (<see cref="JobHold"/>). Off by default.</summary>
    public bool EnableTestHooks { get; set; }
}
