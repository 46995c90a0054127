namespace BeitV2.Web.Jobs.State;

/// <summary>
/// Exclusive locks between servers for writers of files on the shared volume (a collection's commits and uploads).
/// With several servers they are PostgreSQL advisory locks (<see cref="PostgresWriterLocks"/>): <c>flock</c> on the
/// volume excludes nothing between hosts on NFS mounted <c>nolock</c>/<c>local_lock</c>.
/// </summary>
public interface IWriterLocks
{
    /// <summary>Waits up to <paramref name="timeout"/> for the lock named <paramref name="key"/>; null when it stayed held by another writer.</summary>
    IDisposable? Acquire(string key, TimeSpan timeout);
}
