using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using Hangfire;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Hosting;

/// <summary>
/// Start-up checks of the data folder (<c>Storage:DataDirectory</c>), before anything else touches it (the leftover
/// sweep, the job queue, the model registry): it takes a new file (write, fsync, delete); with the embedded SQLite job
/// storage no live server uses it already (<see cref="SingleServerGuard"/>); with PostgreSQL it is the volume the other
/// servers use (<see cref="SharedVolumeCheck"/>). Like <see cref="BindingGuard"/>, a failed check logs the reason (for
/// the operator: the server log may name paths, clients never see it) and the process exits with
/// <see cref="RefusedExitCode"/>, without a stack trace.
/// </summary>
public static class DataFolderGuards
{
    /// <summary>The process exit code of a refusal (EX_CONFIG, as <see cref="BindingGuard"/>).</summary>
    public const int RefusedExitCode = BindingGuard.RefusedExitCode;

    /// <summary>The guard that holds the SQLite storage's lock and liveness file while the host lives (released when it is disposed).</summary>
    public static IServiceCollection AddDataFolderGuards(this IServiceCollection services) => services.AddSingleton<SingleServerGuard>();

    /// <summary>
    /// True when the app must not start; the reason is logged and the app disposed. Call between <c>Build()</c> and
    /// <c>Run()</c>.
    /// </summary>
    public static bool Refuses(WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("BeitV2.Web.DataFolder");
        var reason = Check(app.Services, logger);
        if (reason is null) return false;
        logger.LogCritical("Refusing to start: {Reason}", reason);
        ((IDisposable)app).Dispose();
        return true;
    }

    /// <returns>Null when the server may start; otherwise the reason it may not.</returns>
    public static string? Check(IServiceProvider services, ILogger logger)
    {
        DataDirectory data;
        try
        {
            data = services.GetRequiredService<DataDirectory>();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot create the data folder (Storage:DataDirectory): {e.Message}";
        }
        if (NotWritable(data.Root) is { } notWritable) return notWritable;

        var jobs = services.GetRequiredService<IOptions<JobsOptions>>().Value;
        if (!jobs.Storage.Trim().Equals("postgres", StringComparison.OrdinalIgnoreCase))
            return services.GetRequiredService<SingleServerGuard>().TryAcquire();
        // The job storage first: an unreachable database or a missing connection string fails start-up with its own message.
        services.GetRequiredService<JobStorage>();
        return SharedVolumeCheck.Check(data.Root, jobs, logger);
    }

    /// <summary>Writes, fsyncs and deletes a probe file in <paramref name="root"/>; the reason when that fails.</summary>
    public static string? NotWritable(string root)
    {
        // A name the leftover sweep removes, should a crash leave it.
        var probe = Path.Combine(root, $".write-probe.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var f = new FileStream(probe, FileMode.CreateNew, FileAccess.Write))
            {
                f.WriteByte(1);
                f.Flush(flushToDisk: true);
            }
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(probe); }
            catch (Exception x) when (x is IOException or UnauthorizedAccessException) { }
            var why = e is UnauthorizedAccessException ? $"permission denied for user '{Environment.UserName}'" : e.Message;
            return $"the data folder {root} (Storage:DataDirectory) is not writable: creating a file there failed ({why}). " +
                   "The server keeps its models, datasets, jobs and checkpoints there: make the folder writable for the server's user, " +
                   "or set Storage:DataDirectory to a writable volume.";
        }
    }
}
