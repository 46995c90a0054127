using System.Globalization;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Hosting;

/// <summary>
/// The embedded SQLite job storage (<c>Jobs:Storage=sqlite</c>, <c>{data}/jobs/hangfire.db</c>) serves one server. A
/// second server on the same data folder would run the queue twice and sweep the first one's files away as
/// leftovers, so it refuses to start, on two signals:
/// <list type="bullet">
/// <item>an exclusive lock on <c>{data}/jobs/server.lock</c>, held for the process lifetime (<c>flock</c>: instant
/// between processes of one host, released by the kernel when a process dies);</item>
/// <item>the liveness file <c>{data}/jobs/server.alive</c>, which the live server rewrites every second with a new
/// counter, since <c>flock</c> excludes nothing between hosts on an NFS mount with <c>nolock</c> or <c>local_lock</c>.
/// A starting server that finds it watches it for <see cref="Watch"/>: a change means a live server elsewhere. No clock
/// is compared between hosts. A clean stop deletes the file, so a restart does not wait; after a crash the file is
/// stale and the next start waits once.</item>
/// </list>
/// </summary>
public sealed class SingleServerGuard(DataDirectory data, ILogger<SingleServerGuard> logger) : IDisposable
{
    public const string LockFile = "server.lock";
    public const string AliveFile = "server.alive";

    /// <summary>How often the live server rewrites <see cref="AliveFile"/>.</summary>
    public static readonly TimeSpan Beat = TimeSpan.FromSeconds(1);

    /// <summary>How long a starting server watches an <see cref="AliveFile"/> it finds for a change (2.5 beats).</summary>
    public static readonly TimeSpan Watch = TimeSpan.FromSeconds(2.5);

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    /// <summary>EWOULDBLOCK (= EAGAIN on Linux): the <c>IOException.HResult</c> of a lock another process holds.</summary>
    private const int WouldBlock = 11;

    /// <summary>How long a host waits for an earlier host of the same process to release the lock (see <see cref="WaitForAnEarlierHostOfThisProcess"/>).</summary>
    private static readonly TimeSpan InProcessWait = TimeSpan.FromMinutes(2);

    /// <summary>The lock files held by hosts of this process, and what completes when each lets go.</summary>
    private static readonly Dictionary<string, TaskCompletionSource> HeldHere = new(StringComparer.Ordinal);
    private static readonly Lock HeldGate = new();

    private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? lockPath;
    private readonly string owner = Guid.NewGuid().ToString("N");
    private readonly ManualResetEventSlim stopping = new();
    private FileStream? held;
    private Thread? writer;
    private long counter;
    private string? lastWritten;
    private bool warnedWrite, warnedForeign;
    private int disposed;

    private string? jobs;
    private string Jobs => jobs ??= data.Sub("jobs");
    private string AlivePath => Path.Combine(Jobs, AliveFile);

    /// <summary>
    /// Takes the lock, makes sure no server elsewhere keeps the liveness file going, and starts rewriting it.
    /// </summary>
    /// <returns>Null when this server may start; otherwise the reason it may not, in words for the operator.</returns>
    public string? TryAcquire()
    {
        lockPath = Path.GetFullPath(Path.Combine(Jobs, LockFile));
        for (var attempt = 0; held is null; attempt++)
        {
            try
            {
                // FileShare.None: .NET takes flock(LOCK_EX | LOCK_NB) on Unix and fails at once when another process holds it.
                held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (e.HResult == WouldBlock)
            {
                logger.LogDebug(e, "Could not lock {Path}", lockPath);
                if (attempt > 0 || !WaitForAnEarlierHostOfThisProcess(lockPath)) return InUse("on this machine", Describe(Read(AlivePath)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return $"cannot open the lock file jobs/{LockFile} in the data folder {data.Root} (Storage:DataDirectory): {e.Message}";
            }
        }
        lock (HeldGate) HeldHere[lockPath] = released;

        if (Read(AlivePath) is { } first)
        {
            logger.LogWarning(
                "Found {Path} ({Holder}): a server did not stop cleanly, or one on another host is using this data folder. Watching it for {Seconds} s before starting.",
                AlivePath, Describe(first), Watch.TotalSeconds);
            var watch = System.Diagnostics.Stopwatch.StartNew();   // this host's clock only
            var outcome = "did not change: no server is using this data folder";
            while (watch.Elapsed < Watch)
            {
                Thread.Sleep(Poll);
                var now = Read(AlivePath);
                if (now is null && !File.Exists(AlivePath))
                {
                    outcome = "was deleted: its server stopped cleanly";
                    break;
                }
                if (now is not null && now != first)
                {
                    ReleaseLock();
                    return InUse("on another host", Describe(now));
                }
            }
            logger.LogInformation("{Path} {Outcome}; starting.", AlivePath, outcome);
        }

        Write();
        // Its own thread, not a timer: a thread pool starved at start-up must not make this server look dead.
        writer = new Thread(Run) { IsBackground = true, Name = "server.alive" };
        writer.Start();
        return null;
    }

    /// <summary>
    /// Hosts in one process (tests, on <c>WebApplicationFactory</c>) are disposed on their entry point's thread, which may
    /// still be finishing when the next host on the same data folder starts: the lock is this process's own, so wait
    /// for that host to let go (it is stopping). A live host of this process keeps it: after the wait, a refusal.
    /// </summary>
    private bool WaitForAnEarlierHostOfThisProcess(string lockPath)
    {
        TaskCompletionSource? earlier;
        lock (HeldGate) HeldHere.TryGetValue(lockPath, out earlier);
        if (earlier is null) return false;
        logger.LogInformation("An earlier host in this process holds {Path}; waiting for it to stop", lockPath);
        return earlier.Task.Wait(InProcessWait);
    }

    private string InUse(string where, string holder) =>
        $"the data folder {data.Root} (Storage:DataDirectory) is in use by a live server {where} ({holder}). " +
        "Its job storage is the embedded SQLite database jobs/hangfire.db (Jobs:Storage=sqlite, the default), which serves one server only. " +
        "To run several servers on one data folder, use PostgreSQL: Jobs:Storage=postgres and Jobs:ConnectionString (see \"Scaling out\" in the README). " +
        "Otherwise stop the other server first, or give this one its own Storage:DataDirectory.";

    private static string Describe(string? alive)
    {
        if (alive is null) return "no details";
        var fields = alive.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries).Select(f => f.Split('=', 2)).Where(f => f.Length == 2)
            .GroupBy(f => f[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        return fields.TryGetValue("pid", out var pid) && fields.TryGetValue("host", out var host) ? $"process {pid} on host {host}" : "no details";
    }

    private void Run()
    {
        while (!stopping.Wait(Beat)) Write();
    }

    /// <summary>Rewrites the liveness file atomically (a temporary file renamed over it) with the next counter.</summary>
    private void Write()
    {
        var path = AlivePath;
        if (lastWritten is not null && Read(path) is { } found && found != lastWritten && !warnedForeign)
        {
            warnedForeign = true;
            logger.LogCritical(
                "Another server is writing {Path} ({Holder}): two servers are using the embedded SQLite job storage of one data folder. " +
                "Stop one of them; several servers need Jobs:Storage=postgres.", path, Describe(found));
        }
        var text = string.Create(CultureInfo.InvariantCulture,
            $"owner={owner} counter={++counter} pid={Environment.ProcessId} host={Environment.MachineName}\n");
        var temp = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            // No fsync: the file only has to be seen while this process lives; after a crash it is stale anyway.
            File.WriteAllText(temp, text);
            File.Move(temp, path, overwrite: true);
            lastWritten = text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); }
            catch (Exception x) when (x is IOException or UnauthorizedAccessException) { }
            if (!warnedWrite) logger.LogWarning(e, "Could not rewrite {Path}; another host cannot tell this server is live", path);
            warnedWrite = true;
        }
    }

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A clean stop: the liveness file goes (when it is still this server's), then the lock.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        stopping.Set();
        if (writer is not null && writer.Join(TimeSpan.FromSeconds(10)) && lastWritten is not null && Read(AlivePath) == lastWritten)
        {
            try { File.Delete(AlivePath); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning(e, "Could not delete {Path}; the next start waits {Seconds} s for it", AlivePath, Watch.TotalSeconds);
            }
        }
        ReleaseLock();
        if (writer is null || !writer.IsAlive) stopping.Dispose();
    }

    private void ReleaseLock()
    {
        if (held is not null)
        {
            held.Dispose();
            held = null;
            lock (HeldGate)
                if (lockPath is not null && HeldHere.TryGetValue(lockPath, out var mine) && mine == released) HeldHere.Remove(lockPath);
        }
        released.TrySetResult();
    }
}
