using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;
using StackExchange.Redis;

namespace BeitV2.Web.Hosting;

/// <summary>
/// Readiness on ASP.NET Core health checks: the default models (the existing rule), the data directory
/// (a probe file can be created and deleted), and, when configured, the PostgreSQL job database
/// (<c>Jobs:Storage = postgres</c>) and the Redis backplane (<c>SignalR:Redis</c>). Every check's
/// description is written for the operator without server paths or exception type names; the details go
/// to the server log.
/// </summary>
public static class HealthChecks
{
    public const string Models = "models";
    public const string Data = "data-directory";
    public const string Postgres = "postgres";
    public const string Redis = "redis";

    public static IServiceCollection AddBeitV2HealthChecks(this IServiceCollection services, IConfiguration configuration)
    {
        // The framework logs every unhealthy check as an error; a failing check is a state of the service, which
        // the checks below log as warnings with the details.
        services.AddLogging(l => l.AddFilter(typeof(HealthCheckService).Namespace + ".DefaultHealthCheckService", LogLevel.Critical));
        var checks = services.AddHealthChecks()
            .AddCheck<ModelsHealthCheck>(Models)
            .AddCheck<DataDirectoryHealthCheck>(Data);
        if (string.Equals(configuration["Jobs:Storage"]?.Trim(), "postgres", StringComparison.OrdinalIgnoreCase))
            checks.AddCheck<PostgresHealthCheck>(Postgres);
        if (configuration[SignalRScaleOut.ConfigKey] is { Length: > 0 })
        {
            services.AddSingleton<RedisHealthCheck>();
            checks.AddCheck<RedisHealthCheck>(Redis);
        }
        return services;
    }
}

/// <summary>A default model of every kind the inference routes need is registered.</summary>
public sealed class ModelsHealthCheck(ModelRegistry registry) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        var missing = MissingDefaultModels.Of(registry);
        return Task.FromResult(missing.Count == 0
            ? HealthCheckResult.Healthy("a default model of every kind is registered")
            : HealthCheckResult.Unhealthy("no default " + string.Join(", ", missing.Select(m => m.Kind)) + " model is registered"));
    }
}

/// <summary>The data directory accepts a new file (create, write, delete), so uploads, jobs and imports can be stored.</summary>
public sealed class DataDirectoryHealthCheck(DataDirectory data, ILogger<DataDirectoryHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        var probe = Path.Combine(data.Root, $".health-{Guid.NewGuid():N}");
        try
        {
            await File.WriteAllBytesAsync(probe, [1], ct);
            File.Delete(probe);
            return HealthCheckResult.Healthy("the data directory is writable");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Readiness: cannot write a probe file in the data directory {Root}", data.Root);
            var why = e is UnauthorizedAccessException ? "permission denied" : "the file system refused the write (missing folder, read-only or full disk)";
            return HealthCheckResult.Unhealthy($"cannot create a file in the data directory (Storage:DataDirectory): {why}");
        }
    }
}

/// <summary>The PostgreSQL job database answers <c>SELECT 1</c> within <c>Jobs:ConnectTimeoutSeconds</c>.</summary>
public sealed class PostgresHealthCheck(IOptions<JobsOptions> options, ILogger<PostgresHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        var timeout = Math.Clamp(options.Value.ConnectTimeoutSeconds, 1, 30);
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(options.Value.ConnectionString) { Timeout = timeout, Pooling = false };
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(ct);
            await using var ping = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = timeout };
            await ping.ExecuteScalarAsync(ct);
            return HealthCheckResult.Healthy("the job database answers");
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException or InvalidOperationException
                                      or ArgumentException or OperationCanceledException)
        {
            logger.LogWarning(e, "Readiness: the PostgreSQL job database does not answer");
            return HealthCheckResult.Unhealthy($"the PostgreSQL job database (Jobs:ConnectionString) does not answer within {timeout} s");
        }
    }
}

/// <summary>The Redis backplane answers PING (one connection, made on first use and kept).</summary>
public sealed class RedisHealthCheck(IConfiguration configuration, ILogger<RedisHealthCheck> logger) : IHealthCheck, IDisposable
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private ConnectionMultiplexer? connection;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        try
        {
            await gate.WaitAsync(ct);
            try
            {
                if (connection is null)
                {
                    var options = ConfigurationOptions.Parse(configuration[SignalRScaleOut.ConfigKey]!);
                    options.AbortOnConnectFail = true;
                    options.ConnectTimeout = Math.Min(options.ConnectTimeout, 3000);
                    options.ClientName = "beitv2-health";
                    connection = await ConnectionMultiplexer.ConnectAsync(options);
                }
            }
            finally
            {
                gate.Release();
            }
            await connection.GetDatabase().PingAsync();
            return HealthCheckResult.Healthy("the Redis backplane answers");
        }
        catch (Exception e) when (e is RedisException or TimeoutException or ArgumentException or OperationCanceledException)
        {
            logger.LogWarning(e, "Readiness: the Redis backplane does not answer");
            return HealthCheckResult.Unhealthy("the Redis backplane (SignalR:Redis) does not answer");
        }
    }

    public void Dispose()
    {
        connection?.Dispose();
        gate.Dispose();
    }
}
