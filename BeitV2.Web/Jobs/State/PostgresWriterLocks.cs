using Npgsql;

namespace BeitV2.Web.Jobs.State;

/// <summary>
/// <see cref="IWriterLocks"/> as PostgreSQL session advisory locks: one connection per held lock, so the lock lasts
/// exactly as long as the writer holds it, and a server that dies (its connection drops) releases it.
/// </summary>
public sealed class PostgresWriterLocks(PostgresState db) : IWriterLocks
{
    public IDisposable? Acquire(string key, TimeSpan timeout)
    {
        var connection = db.OpenConnection();
        try
        {
            using (var limit = PostgresState.Command(connection, $"SET lock_timeout = {(long)Math.Max(1, timeout.TotalMilliseconds)}"))
                limit.ExecuteNonQuery();
            using var take = PostgresState.Command(connection, "SELECT pg_advisory_lock(hashtext(@key))");
            take.Parameters.AddWithValue("key", "beitv2-writer:" + key);
            take.ExecuteNonQuery();
            return new Held(connection);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            connection.Dispose();
            return null;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private sealed class Held(NpgsqlConnection connection) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                using var release = PostgresState.Command(connection, "SELECT pg_advisory_unlock_all()");
                release.ExecuteNonQuery();
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                // The connection is gone: so is the lock.
            }
            // Not back to the pool holding anything: the unlock above, or a broken connection that the pool drops.
            connection.Dispose();
        }
    }
}
