using BeitV2.Web.Jobs.State;

namespace BeitV2.Web.Registry;

/// <summary>
/// The registry's defaults and change counter in PostgreSQL (<c>{schema}.model_defaults</c>,
/// <c>{schema}.registry_version</c>): a default change is one upsert, so two servers changing defaults at once leave the
/// last write, and every server reads the same answer. Servers poll the counter (<see cref="RegistryChangeWatcher"/>):
/// a file system's modification times are cached on NFS and cannot tell them.
/// </summary>
public sealed class PostgresRegistryState(PostgresState db, string serverName) : IRegistryState
{
    private string T(string table) => $"{db.Schema}.{table}";

    public Dictionary<string, string> ReadDefaults() => db.WithConnection(c =>
    {
        using var query = PostgresState.Command(c, $"SELECT kind, model_id FROM {T("model_defaults")}");
        using var reader = query.ExecuteReader();
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read()) result[reader.GetString(0)] = reader.GetString(1);
        return result;
    });

    public void SetDefault(string kind, string modelId) => Write(kind, modelId,
        "ON CONFLICT (kind) DO UPDATE SET model_id = excluded.model_id, updated_at = excluded.updated_at, updated_by = excluded.updated_by");

    public bool SetDefaultIfNone(string kind, string modelId) => Write(kind, modelId, "ON CONFLICT (kind) DO NOTHING");

    /// <summary>One default row written (or not, per <paramref name="onConflict"/>); the counter moves when it was.</summary>
    private bool Write(string kind, string modelId, string onConflict) => db.InTransaction((c, t) =>
    {
        using var write = PostgresState.Command(c, $"""
            INSERT INTO {T("model_defaults")} (kind, model_id, updated_at, updated_by) VALUES (@kind, @model, now(), @by) {onConflict}
            """, t);
        write.Parameters.AddWithValue("kind", kind);
        write.Parameters.AddWithValue("model", modelId);
        write.Parameters.AddWithValue("by", serverName);
        var written = write.ExecuteNonQuery() == 1;
        if (written) Bump(c, t);
        return written;
    });

    public void SeedDefaults(IReadOnlyDictionary<string, string> defaults) => db.InTransaction((c, t) =>
    {
        // Only into an empty table: a deployment whose defaults were changed (or deleted on purpose) keeps them.
        using (var count = PostgresState.Command(c, $"SELECT count(*) FROM {T("model_defaults")}", t))
            if ((long)count.ExecuteScalar()! > 0) return 0;
        foreach (var (kind, model) in defaults)
        {
            using var insert = PostgresState.Command(c, $"""
                INSERT INTO {T("model_defaults")} (kind, model_id, updated_by) VALUES (@kind, @model, @by) ON CONFLICT (kind) DO NOTHING
                """, t);
            insert.Parameters.AddWithValue("kind", kind);
            insert.Parameters.AddWithValue("model", model);
            insert.Parameters.AddWithValue("by", serverName);
            insert.ExecuteNonQuery();
        }
        Bump(c, t);
        return 0;
    });

    public void Changed() => db.WithConnection(c =>
    {
        using var bump = PostgresState.Command(c, $"UPDATE {T("registry_version")} SET version = version + 1, changed_at = now() WHERE id = 1");
        return bump.ExecuteNonQuery();
    });

    public long? Version() => db.WithConnection(c =>
    {
        using var query = PostgresState.Command(c, $"SELECT version FROM {T("registry_version")} WHERE id = 1");
        return query.ExecuteScalar() as long?;
    });

    private void Bump(Npgsql.NpgsqlConnection c, Npgsql.NpgsqlTransaction t)
    {
        using var bump = PostgresState.Command(c, $"UPDATE {T("registry_version")} SET version = version + 1, changed_at = now() WHERE id = 1", t);
        bump.ExecuteNonQuery();
    }
}
