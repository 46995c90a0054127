using BeitV2.Web.Datasets;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs.State;
using BeitV2.Web.Registry;
using Hangfire;
using Hangfire.Storage.SQLite;

namespace BeitV2.Web.Jobs;

public static class JobsRegistration
{
    /// <summary>Datasets, the model evaluator, the job store, Hangfire (storage per <c>Jobs:Storage</c>), the runner and the SignalR hub's services.</summary>
    public static IServiceCollection AddTrainingJobs(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<DatasetOptions>(o =>
        {
            if (configuration["Storage:FashionMnistDirectory"] is { Length: > 0 } dir) o.FashionMnistDirectory = dir;
        });
        services.Configure<JobsOptions>(configuration.GetSection(JobsOptions.Section));
        var jobs = configuration.GetSection(JobsOptions.Section).Get<JobsOptions>() ?? new JobsOptions();
        var storageKind = jobs.Storage.Trim().ToLowerInvariant();
        services.AddSingleton<JobStorage>(storageKind switch
        {
            "sqlite" => sp =>
            {
                var path = Path.Combine(sp.GetRequiredService<DataDirectory>().Sub("jobs"), "hangfire.db");
                return new SQLiteStorage(path, new SQLiteStorageOptions { QueuePollInterval = TimeSpan.FromMilliseconds(Math.Max(10, jobs.QueuePollIntervalMs)) });
            },
            "postgres" => _ => PostgresJobStorage.Create(jobs),
            _ => throw new InvalidOperationException($"Jobs:Storage must be 'sqlite' or 'postgres', not '{jobs.Storage}'."),
        });
        services.AddSingleton<IBackgroundJobClient>(sp => new BackgroundJobClient(sp.GetRequiredService<JobStorage>()));
        services.AddSingleton<DatasetCatalog>();
        services.AddSingleton<ServerIdentity>();
        if (storageKind == "postgres")
        {
            // Several servers: job records, metrics and the registry's defaults live in PostgreSQL beside the queue.
            services.AddSingleton(sp => new PostgresState(jobs, sp.GetRequiredService<ILogger<PostgresState>>()));
            services.AddSingleton<IJobRecordStore>(sp => new PostgresJobRecordStore(sp.GetRequiredService<PostgresState>(),
                TimeSpan.FromSeconds(Math.Max(3, jobs.HeartbeatTimeoutSeconds))));
            services.AddSingleton<IRegistryState>(sp => new PostgresRegistryState(sp.GetRequiredService<PostgresState>(),
                sp.GetRequiredService<ServerIdentity>().Name));
            services.AddSingleton<IWriterLocks>(sp => new PostgresWriterLocks(sp.GetRequiredService<PostgresState>()));
            services.AddHostedService<RegistryChangeWatcher>();
        }
        else
        {
            services.AddSingleton<IJobRecordStore>(sp => new FileJobRecordStore(sp.GetRequiredService<DataDirectory>().Sub("jobs"),
                sp.GetRequiredService<ILogger<JobStore>>()));
        }
        services.AddSingleton(sp => new JobStore(sp.GetRequiredService<DataDirectory>(), sp.GetRequiredService<ILogger<JobStore>>(),
            sp.GetRequiredService<IJobRecordStore>()));
        services.AddSingleton<JobValidator>();
        services.AddSingleton<JobPlanner>();
        services.AddSingleton<ModelEvaluator>();
        services.AddSingleton<Domains.DomainFitter>();
        services.AddSingleton<Domains.TrainedDomains>();
        services.AddSingleton<Domains.DomainMeasure>();
        services.AddSingleton<AgreementEvaluator>();
        services.AddSingleton<SegmentationGridMaker>();
        services.AddSingleton<JobScheduler>();
        services.AddSingleton<JobHold>();
        services.AddSingleton<TrainingBroadcaster>();
        services.AddTransient<JobRunner>();
        services.AddHostedService<TrainingJobsHost>();
        services.AddSignalR().AddTrainingHubBackplane(configuration);
        return services;
    }
}
