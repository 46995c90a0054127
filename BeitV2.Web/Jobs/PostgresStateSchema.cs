using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace BeitV2.Web.Jobs;

/// <summary>
/// The PostgreSQL schema of the service's own tables (<c>Jobs:StateSchema</c>, default <c>beitv2</c>), next to Hangfire's.
/// Servers that start at the same moment create it and its tables under one transaction-scoped advisory lock
/// (<see cref="LockKey"/>), since <c>CREATE ... IF NOT EXISTS</c> alone can still fail on a concurrent create.
/// </summary>
public static partial class PostgresStateSchema
{
    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    private static partial Regex PlainName();

    /// <summary>The schema name, checked (letters, digits, underscores; at most 63), else an exception naming the setting.</summary>
    public static string Name(JobsOptions jobs)
    {
        var name = (jobs.StateSchema ?? "").Trim();
        if (!PlainName().IsMatch(name))
            throw new InvalidOperationException(
                $"Jobs:StateSchema must be a plain PostgreSQL name (letters, digits and underscores, at most 63, not starting with a digit), not '{jobs.StateSchema}'.");
        return name;
    }

    /// <summary>The schema name as an SQL identifier.</summary>
    public static string Quoted(string schema) => "\"" + schema + "\"";

    /// <summary>The advisory lock every server takes before creating the schema or a table in it (one key per schema name).</summary>
    public static long LockKey(string schema) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("beitv2 state schema " + schema)), 0);

    /// <summary>
    /// Opens a connection to the job database (<c>Jobs:ConnectionString</c>) with the start-up connect timeout
    /// (<c>Jobs:ConnectTimeoutSeconds</c>).
    /// </summary>
    public static NpgsqlConnection Open(JobsOptions jobs)
    {
        var builder = new NpgsqlConnectionStringBuilder(jobs.ConnectionString);
        var timeout = Math.Clamp(jobs.ConnectTimeoutSeconds, 1, 300);
        if (builder.Timeout <= 0 || builder.Timeout > timeout) builder.Timeout = timeout;
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            connection.Open();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Within <paramref name="transaction"/>: takes the schema's advisory lock (held until the transaction ends) and
    /// creates the schema when it is missing (only then, so a user without CREATE on the database can use one made for it).
    /// </summary>
    public static void Ensure(NpgsqlConnection connection, NpgsqlTransaction transaction, string schema)
    {
        using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(@key)", connection, transaction))
        {
            lockCommand.Parameters.AddWithValue("key", LockKey(schema));
            lockCommand.ExecuteNonQuery();
        }
        using var exists = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = @schema)", connection, transaction);
        exists.Parameters.AddWithValue("schema", schema);
        if (exists.ExecuteScalar() is true) return;
        using var create = new NpgsqlCommand($"CREATE SCHEMA IF NOT EXISTS {Quoted(schema)}", connection, transaction);
        create.ExecuteNonQuery();
    }

    /// <summary>True when <paramref name="schema"/>.<paramref name="table"/> exists (checked before a CREATE TABLE, for the same reason).</summary>
    public static bool TableExists(NpgsqlConnection connection, NpgsqlTransaction transaction, string schema, string table)
    {
        using var exists = new NpgsqlCommand(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = @schema AND tablename = @table)", connection, transaction);
        exists.Parameters.AddWithValue("schema", schema);
        exists.Parameters.AddWithValue("table", table);
        return exists.ExecuteScalar() is true;
    }
}
