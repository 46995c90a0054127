using System.Net.Sockets;
using Npgsql;

namespace BeitV2.Web.Jobs.State;

/// <summary>
/// The PostgreSQL database several servers coordinate through (<c>Jobs:Storage=postgres</c>): job records, their
/// metrics, the model registry's defaults and its change counter, in the schema <c>Jobs:StateSchema</c> (default
/// <c>beitv2</c>; Hangfire's queue keeps its own schema). The tables are created at start-up, as Hangfire creates its own.
/// </summary>
/// <remarks>
/// A database that restarts or drops connections for a moment must not fail a running job: every operation is retried
/// on connection failures for up to <c>Jobs:DatabaseRetrySeconds</c> (each retry re-reads what it changes, in a new
/// transaction), and only then surfaces as a clear error (<see cref="Errors.StateUnavailableException"/>: 503 to clients).
/// </remarks>
public sealed class PostgresState : IDisposable
{
    /// <summary>The schema's version this build creates; bumped with every change to <see cref="Migrations"/>.</summary>
    public const int SchemaVersion = 1;

    private readonly NpgsqlDataSource source;
    private readonly TimeSpan retryFor;
    private readonly ILogger logger;

    public PostgresState(JobsOptions options, ILogger<PostgresState> logger)
    {
        this.logger = logger;
        Schema = PostgresStateSchema.Quoted(PostgresStateSchema.Name(options));
        var builder = new NpgsqlConnectionStringBuilder(PostgresJobStorage.ConnectionString(options));
        source = NpgsqlDataSource.Create(builder.ConnectionString);
        retryFor = TimeSpan.FromSeconds(Math.Clamp(options.DatabaseRetrySeconds, 0, 3600));
        Migrate();
    }

    /// <summary>The schema the state tables live in, as a quoted SQL identifier (validated by <see cref="PostgresStateSchema.Name"/>).</summary>
    public string Schema { get; }

    /// <summary>Runs <paramref name="work"/> in a transaction (read committed), retried on connection failures; commits unless it throws.</summary>
    public T InTransaction<T>(Func<NpgsqlConnection, NpgsqlTransaction, T> work) => WithRetry(() =>
    {
        using var connection = source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        var result = work(connection, transaction);
        transaction.Commit();
        return result;
    });

    /// <summary>Runs <paramref name="work"/> on a connection (autocommit), retried on connection failures.</summary>
    public T WithConnection<T>(Func<NpgsqlConnection, T> work) => WithRetry(() =>
    {
        using var connection = source.OpenConnection();
        return work(connection);
    });

    /// <summary>An open connection of its own (retried while the database is unreachable), e.g. to hold a session lock.</summary>
    public NpgsqlConnection OpenConnection() => WithRetry(() => source.OpenConnection());

    public static NpgsqlCommand Command(NpgsqlConnection connection, string sql, NpgsqlTransaction? transaction = null) =>
        new(sql, connection, transaction);

    private T WithRetry<T>(Func<T> operation)
    {
        var until = DateTime.UtcNow + retryFor;
        var delay = TimeSpan.FromMilliseconds(100);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return operation();
            }
            catch (Exception e) when (IsConnectionFailure(e) && DateTime.UtcNow < until)
            {
                if (attempt == 1) logger.LogWarning("The state database is unreachable ({Message}); retrying for up to {Seconds:F0} s", e.Message, retryFor.TotalSeconds);
                Thread.Sleep(delay);
                delay = TimeSpan.FromMilliseconds(Math.Min(2000, delay.TotalMilliseconds * 2));
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
                // The cause names the database's host: the server log gets it, clients get words.
                logger.LogError("The state database stayed unreachable for {Seconds:F0} s: {Message}", retryFor.TotalSeconds, e.GetBaseException().Message);
                throw new Errors.StateUnavailableException(
                    $"The job database stayed unreachable for {retryFor.TotalSeconds:F0} s; try again when it is back.");
            }
        }
    }

    /// <summary>A lost or refused connection, or a server shutting down: worth retrying. Constraint violations and SQL errors are not.</summary>
    public static bool IsConnectionFailure(Exception e) => e switch
    {
        PostgresException p => p.SqlState.StartsWith("08", StringComparison.Ordinal)    // connection exception
            || p.SqlState.StartsWith("57P", StringComparison.Ordinal)                     // admin shutdown, crash shutdown, cannot connect now
            || p.SqlState == "53300",                                                      // too many connections
        NpgsqlException n => n.IsTransient || n.InnerException is SocketException or IOException or TimeoutException,
        SocketException or TimeoutException => true,
        _ => false,
    };

    /// <summary>
    /// Creates the schema's tables when missing, under the schema's transaction-scoped advisory lock
    /// (<see cref="PostgresStateSchema.Ensure"/>, shared with the start-up volume check) so that servers starting
    /// together do not race; records the version it created.
    /// </summary>
    private void Migrate() => InTransaction((c, t) =>
    {
        PostgresStateSchema.Ensure(c, t, Schema.Trim('"'));
        using (var create = Command(c, Migrations.Replace("{schema}", Schema, StringComparison.Ordinal), t)) create.ExecuteNonQuery();
        return 0;
    });

    private const string Migrations = """
        CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO {schema}.schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;
        -- One row per job: the record as the API shows it (jsonb), and the columns the lease is decided on.
        CREATE TABLE IF NOT EXISTS {schema}.jobs (
            id text PRIMARY KEY,
            record jsonb NOT NULL,
            status text NOT NULL,
            run_id text,
            lease_owner text,
            heartbeat_at timestamptz,
            lease_expires_at timestamptz,
            cancel_requested boolean NOT NULL DEFAULT false,
            output_model text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE IF NOT EXISTS {schema}.job_metrics (
            job_id text NOT NULL REFERENCES {schema}.jobs (id) ON DELETE CASCADE,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            run_id text,
            entry jsonb NOT NULL,
            PRIMARY KEY (job_id, seq));
        -- The registry: the default model of each kind, and a counter every registry change bumps (servers poll it).
        CREATE TABLE IF NOT EXISTS {schema}.model_defaults (
            kind text PRIMARY KEY,
            model_id text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text);
        CREATE TABLE IF NOT EXISTS {schema}.registry_version (
            id integer PRIMARY KEY CHECK (id = 1),
            version bigint NOT NULL,
            changed_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO {schema}.registry_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;
        """;

    public void Dispose() => source.Dispose();
}
