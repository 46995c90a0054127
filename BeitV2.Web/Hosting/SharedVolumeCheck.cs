using System.Text;
using System.Text.RegularExpressions;
using BeitV2.Ml.Checkpoints;
using BeitV2.Web.Jobs;
using Npgsql;

namespace BeitV2.Web.Hosting;

/// <summary>
/// With several servers (<c>Jobs:Storage=postgres</c>) every one must mount the same volume at
/// <c>Storage:DataDirectory</c>: a server on a volume of its own would answer for models, datasets and job folders the
/// others cannot see. The data folder carries a random id in <c>{data}/.volume-id</c> (created once, atomically, never
/// replaced), and the job database records the first id a server brought (one row in
/// <c>{Jobs:StateSchema}.data_volume</c>); a server whose folder holds another id refuses to start.
/// </summary>
public static partial class SharedVolumeCheck
{
    public const string VolumeIdFile = ".volume-id";
    public const string Table = "data_volume";

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex VolumeId();

    /// <returns>Null when the data folder is the shared volume; otherwise the reason this server may not start.</returns>
    public static string? Check(string root, JobsOptions jobs, ILogger logger)
    {
        string local;
        try
        {
            local = ReadOrCreate(root, logger, out var reason);
            if (reason is not null) return reason;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot read or create {VolumeIdFile} in the data folder {root} (Storage:DataDirectory): {e.Message}";
        }

        string schema;
        try { schema = PostgresStateSchema.Name(jobs); }
        catch (InvalidOperationException e) { return e.Message; }
        string recorded;
        try
        {
            recorded = Record(jobs, schema, local);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return $"cannot record the data folder's volume id in the job database (Jobs:ConnectionString, schema {schema}): {e.GetBaseException().Message}";
        }
        if (recorded == local)
        {
            logger.LogInformation("The data folder {Root} is the shared volume {VolumeId} recorded in the job database", root, local);
            return null;
        }
        return $"the data folder {root} (Storage:DataDirectory) is not the shared volume the other servers use: its {VolumeIdFile} holds {local}, " +
               $"while the job database (Jobs:ConnectionString) records {recorded} in {schema}.{Table}, the volume of the first server that started. " +
               "Mount the same volume at Storage:DataDirectory on every server. " +
               $"(If the data really moved to a new volume, copy {VolumeIdFile} from the old one, or delete the record: DELETE FROM {schema}.{Table};)";
    }

    /// <summary>The folder's volume id, created when missing (when another server creates it at the same moment, its id wins).</summary>
    private static string ReadOrCreate(string root, ILogger logger, out string? reason)
    {
        reason = null;
        var path = Path.Combine(root, VolumeIdFile);
        if (!File.Exists(path))
        {
            var id = Guid.NewGuid().ToString("N");
            if (DurableFiles.CreateNew(path, Encoding.ASCII.GetBytes(id + "\n")))
                logger.LogInformation("Gave the data folder {Root} the volume id {VolumeId} ({File})", root, id, VolumeIdFile);
        }
        var text = File.ReadAllText(path).Trim();
        if (!VolumeId().IsMatch(text))
            reason = $"the file {VolumeIdFile} in the data folder {root} (Storage:DataDirectory) does not hold a volume id (32 hexadecimal digits). " +
                     "Restore it from another server's data folder (it is the same file on a shared volume).";
        return text;
    }

    /// <summary>Inserts <paramref name="local"/> as the shared volume's id unless one is recorded; returns the recorded one.</summary>
    private static string Record(JobsOptions jobs, string schema, string local)
    {
        using var connection = PostgresStateSchema.Open(jobs);
        using var transaction = connection.BeginTransaction();
        PostgresStateSchema.Ensure(connection, transaction, schema);
        var table = $"{PostgresStateSchema.Quoted(schema)}.{Table}";
        if (!PostgresStateSchema.TableExists(connection, transaction, schema, Table))
        {
            using var create = new NpgsqlCommand(
                $"CREATE TABLE IF NOT EXISTS {table} (" +
                "only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), volume_id text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())",
                connection, transaction);
            create.ExecuteNonQuery();
        }
        using (var insert = new NpgsqlCommand($"INSERT INTO {table} (volume_id) VALUES (@id) ON CONFLICT (only_row) DO NOTHING", connection, transaction))
        {
            insert.Parameters.AddWithValue("id", local);
            insert.ExecuteNonQuery();
        }
        using var select = new NpgsqlCommand($"SELECT volume_id FROM {table}", connection, transaction);
        var recorded = (string)select.ExecuteScalar()!;
        transaction.Commit();
        return recorded;
    }
}
