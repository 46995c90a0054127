using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Npgsql;

namespace BeitV2.Web.Jobs;

/// <summary>
/// Hangfire on PostgreSQL (<c>Jobs:Storage = postgres</c>): several servers share one queue. The
/// database is checked once at start-up with a short connect timeout, so an unreachable or
/// misconfigured server fails fast with a message that names the host, instead of hanging.
/// </summary>
public static class PostgresJobStorage
{
    public static PostgreSqlStorage Create(JobsOptions jobs)
    {
        var connectionString = ConnectionString(jobs);
        var options = new PostgreSqlStorageOptions
        {
            SchemaName = jobs.Schema,
            PrepareSchemaIfNecessary = true,
            QueuePollInterval = TimeSpan.FromMilliseconds(Math.Max(10, jobs.QueuePollIntervalMs)),
            UseSlidingInvisibilityTimeout = true,
            InvisibilityTimeout = TimeSpan.FromSeconds(Math.Max(5, jobs.InvisibilityTimeoutSeconds)),
        };
        return new PostgreSqlStorage(new NpgsqlConnectionFactory(connectionString, options), options);
    }

    /// <summary>
    /// <c>Jobs:ConnectionString</c>, checked: parsed, its connect timeout capped at <c>Jobs:ConnectTimeoutSeconds</c>, and the
    /// database reached once (a clear start-up error otherwise). Hangfire's queue and <see cref="State.PostgresState"/> use it.
    /// </summary>
    public static string ConnectionString(JobsOptions jobs)
    {
        if (string.IsNullOrWhiteSpace(jobs.ConnectionString))
            throw new InvalidOperationException(
                "Jobs:Storage = postgres needs Jobs:ConnectionString, e.g. \"Host=db;Port=5432;Username=beitv2;Password=...;Database=beitv2\" " +
                "(environment variable Jobs__ConnectionString).");
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(jobs.ConnectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new InvalidOperationException($"Jobs:ConnectionString is not a valid PostgreSQL connection string: {e.Message}", e);
        }
        var timeout = Math.Clamp(jobs.ConnectTimeoutSeconds, 1, 300);
        if (builder.Timeout <= 0 || builder.Timeout > timeout) builder.Timeout = timeout;
        var where = $"{builder.Host}:{builder.Port}/{builder.Database ?? builder.Username}";
        try
        {
            using var connection = new NpgsqlConnection(builder.ConnectionString);
            connection.Open();
            using var ping = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = timeout };
            ping.ExecuteScalar();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            throw new InvalidOperationException(
                $"Jobs:Storage = postgres: cannot reach the job database at {where} within {timeout} s ({e.GetBaseException().Message}). " +
                "Check Jobs:ConnectionString and that PostgreSQL is running, or use Jobs:Storage = sqlite for a single server.", e);
        }

        return builder.ConnectionString;
    }
}
