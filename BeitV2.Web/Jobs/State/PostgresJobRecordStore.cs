using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Errors;
using Npgsql;
using NpgsqlTypes;

namespace BeitV2.Web.Jobs.State;

/// <summary>
/// Job records and metrics in PostgreSQL (<c>Jobs:Storage=postgres</c>): one row per job in <c>{schema}.jobs</c>, its
/// metrics in <c>{schema}.job_metrics</c>. A change locks the row (<c>SELECT … FOR UPDATE</c>), applies the change with
/// the database's <c>now()</c> as the clock and writes it back in the same transaction, so servers on several hosts
/// exclude each other without file locks and compare heartbeats on one clock.
/// </summary>
/// <remarks>
/// The lease columns (<c>run_id</c>, <c>lease_owner</c>, <c>heartbeat_at</c>, <c>lease_expires_at</c>) are kept beside
/// the record for operators and queries; the record (jsonb) is what the API shows. A metrics entry of a run is appended
/// only while that run holds the row (checked under a share lock in the same transaction): a run that lost its lease
/// appends nothing.
/// </remarks>
public sealed class PostgresJobRecordStore(PostgresState db, TimeSpan heartbeatTimeout) : IJobRecordStore
{
    private string T(string table) => $"{db.Schema}.{table}";

    public IReadOnlyList<JobRecord> List() => db.WithConnection(c =>
    {
        using var query = PostgresState.Command(c, $"SELECT record::text FROM {T("jobs")} ORDER BY created_at, id");
        using var reader = query.ExecuteReader();
        var result = new List<JobRecord>();
        while (reader.Read()) result.Add(Parse(reader.GetString(0)));
        return (IReadOnlyList<JobRecord>)result;
    });

    public JobRecord? Find(string id) => db.WithConnection(c =>
    {
        using var query = PostgresState.Command(c, $"SELECT record::text FROM {T("jobs")} WHERE id = @id");
        query.Parameters.AddWithValue("id", id);
        return query.ExecuteScalar() is string json ? Parse(json) : null;
    });

    public void Create(JobRecord job) => db.InTransaction((c, t) =>
    {
        using var insert = PostgresState.Command(c, $"""
            INSERT INTO {T("jobs")} (id, record, status, created_at) VALUES (@id, @record, @status, @created)
            ON CONFLICT (id) DO NOTHING
            """, t);
        insert.Parameters.AddWithValue("id", job.Id);
        insert.Parameters.AddWithValue("record", NpgsqlDbType.Jsonb, Serialize(job));
        insert.Parameters.AddWithValue("status", job.Status);
        insert.Parameters.AddWithValue("created", job.CreatedAt);
        if (insert.ExecuteNonQuery() == 0) throw new ConflictException($"A job with id '{job.Id}' exists already.");
        return 0;
    });

    public JobRecord? Update(string id, Func<JobRecord, DateTimeOffset, JobRecord?> change) => db.InTransaction((c, t) =>
    {
        JobRecord current;
        DateTimeOffset now;
        using (var select = PostgresState.Command(c, $"SELECT record::text, now() FROM {T("jobs")} WHERE id = @id FOR UPDATE", t))
        {
            select.Parameters.AddWithValue("id", id);
            using var reader = select.ExecuteReader();
            if (!reader.Read()) return null;
            current = Parse(reader.GetString(0));
            now = reader.GetFieldValue<DateTimeOffset>(1);
        }
        var next = change(current, now);
        if (next is null || ReferenceEquals(next, current)) return current;
        Write(c, t, next);
        return next;
    });

    private void Write(NpgsqlConnection c, NpgsqlTransaction t, JobRecord job)
    {
        var running = job.Status == JobStatus.Running;
        using var update = PostgresState.Command(c, $"""
            UPDATE {T("jobs")} SET record = @record, status = @status, run_id = @run, lease_owner = @owner, heartbeat_at = @beat,
                lease_expires_at = @expires, cancel_requested = @cancel, output_model = @output, updated_at = now()
            WHERE id = @id
            """, t);
        update.Parameters.AddWithValue("id", job.Id);
        update.Parameters.AddWithValue("record", NpgsqlDbType.Jsonb, Serialize(job));
        update.Parameters.AddWithValue("status", job.Status);
        update.Parameters.AddWithValue("run", (object?)job.RunId ?? DBNull.Value);
        update.Parameters.AddWithValue("owner", running ? (object?)job.Server ?? DBNull.Value : DBNull.Value);
        update.Parameters.AddWithValue("beat", NpgsqlDbType.TimestampTz, (object?)job.HeartbeatAt ?? DBNull.Value);
        update.Parameters.AddWithValue("expires", NpgsqlDbType.TimestampTz,
            running && job.HeartbeatAt is { } beat ? beat + heartbeatTimeout : DBNull.Value);
        update.Parameters.AddWithValue("cancel", job.CancelRequested);
        update.Parameters.AddWithValue("output", (object?)job.OutputModel ?? DBNull.Value);
        update.ExecuteNonQuery();
    }

    public bool Delete(string id, Action<JobRecord> check, Action removeFiles)
    {
        try
        {
            return db.InTransaction((c, t) =>
            {
                using (var select = PostgresState.Command(c, $"SELECT record::text FROM {T("jobs")} WHERE id = @id FOR UPDATE", t))
                {
                    select.Parameters.AddWithValue("id", id);
                    if (select.ExecuteScalar() is not string json) return false;
                    check(Parse(json));
                }
                using (var delete = PostgresState.Command(c, $"DELETE FROM {T("jobs")} WHERE id = @id", t))
                {
                    delete.Parameters.AddWithValue("id", id);
                    delete.ExecuteNonQuery();
                }
                // Last: the folder is renamed away only when the row's deletion is about to commit.
                removeFiles();
                return true;
            });
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
    }

    public bool AppendMetrics(string id, JsonObject entry, string? runId) => db.InTransaction((c, t) =>
    {
        // The share lock conflicts with a takeover's FOR UPDATE: the append and the run id it was checked against are one.
        using (var check = PostgresState.Command(c, $"SELECT run_id FROM {T("jobs")} WHERE id = @id FOR SHARE", t))
        {
            check.Parameters.AddWithValue("id", id);
            var holder = check.ExecuteScalar();
            if (holder is null) return false;
            if (runId is not null && (holder as string) != runId) return false;
        }
        using var insert = PostgresState.Command(c, $"INSERT INTO {T("job_metrics")} (job_id, run_id, entry) VALUES (@id, @run, @entry)", t);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("run", (object?)runId ?? DBNull.Value);
        insert.Parameters.AddWithValue("entry", NpgsqlDbType.Jsonb, entry.ToJsonString(new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        insert.ExecuteNonQuery();
        return true;
    });

    public IReadOnlyList<string> ReadMetrics(string id) => db.WithConnection(c =>
    {
        using var query = PostgresState.Command(c, $"SELECT entry::text FROM {T("job_metrics")} WHERE job_id = @id ORDER BY seq");
        query.Parameters.AddWithValue("id", id);
        using var reader = query.ExecuteReader();
        var lines = new List<string>();
        while (reader.Read()) lines.Add(reader.GetString(0));
        return (IReadOnlyList<string>)lines;
    });

    public DateTimeOffset Now() => db.WithConnection(c =>
    {
        using var query = PostgresState.Command(c, "SELECT now()");
        return query.ExecuteScalar() is DateTime utc ? new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)) : DateTimeOffset.UtcNow;
    });

    private static string Serialize(JobRecord job) => JsonSerializer.Serialize(job, JobStore.Json);

    private static JobRecord Parse(string json) =>
        JsonSerializer.Deserialize<JobRecord>(json, JobStore.Json) ?? throw new InvalidDataException("an empty job record in the database");
}
