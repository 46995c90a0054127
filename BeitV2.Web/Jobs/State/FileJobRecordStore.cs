using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Jobs.State;

/// <summary>
/// The embedded (single-server, <c>Jobs:Storage=sqlite</c>) job records: <c>{data}/jobs/{id}/job.json</c>, replaced
/// atomically on every change, and <c>metrics.jsonl</c>, one JSON object per line. Every change is a read-modify-write
/// under an exclusive lock on <c>job.lock</c>.
/// </summary>
/// <remarks>
/// .NET takes that lock with <c>flock</c> on Linux, which excludes threads of this process and other processes on this
/// host, but nothing across hosts on NFS mounted <c>nolock</c> or <c>local_lock</c>: that is why several servers keep
/// their records in PostgreSQL (<see cref="PostgresJobRecordStore"/>), and why a second server refuses to start on
/// embedded storage another live server uses.
/// </remarks>
public sealed class FileJobRecordStore(string jobsDirectory, ILogger logger) : IJobRecordStore
{
    private string JobDirectory(string id) => Path.Combine(jobsDirectory, id);
    private string MetricsFile(string id) => Path.Combine(JobDirectory(id), "metrics.jsonl");
    private string RecordFile(string id) => Path.Combine(JobDirectory(id), "job.json");

    public IReadOnlyList<JobRecord> List() =>
        Directory.EnumerateDirectories(jobsDirectory).Select(Path.GetFileName).Where(name => JobStore.IsSafeId(name!))
            .Select(name => Read(name!)).OfType<JobRecord>().OrderBy(j => j.CreatedAt).ToList();

    public JobRecord? Find(string id) => Read(id);

    public void Create(JobRecord job)
    {
        Directory.CreateDirectory(JobDirectory(job.Id));
        using (Lock(job.Id)) Write(job);
    }

    public JobRecord? Update(string id, Func<JobRecord, DateTimeOffset, JobRecord?> change)
    {
        if (!Directory.Exists(JobDirectory(id))) return null;
        using var held = Lock(id);
        var current = Read(id);
        if (current is null) return null;
        var next = change(current, DateTimeOffset.UtcNow);
        if (next is null || ReferenceEquals(next, current)) return current;
        Write(next);
        return next;
    }

    public bool Delete(string id, Action<JobRecord> check, Action removeFiles)
    {
        if (!Directory.Exists(JobDirectory(id))) return false;
        try
        {
            using (Lock(id))
            {
                if (Read(id) is not { } job) return false;
                check(job);
                removeFiles();
                return true;
            }
        }
        catch (DirectoryNotFoundException)
        {
            return false; // deleted meanwhile
        }
    }

    public bool AppendMetrics(string id, JsonObject entry, string? runId)
    {
        var line = entry.ToJsonString(new JsonSerializerOptions(JsonSerializerDefaults.Web)) + "\n";
        using (Lock(id))
        {
            if (runId is not null && Read(id)?.RunId != runId) return false;
            File.AppendAllText(MetricsFile(id), line, Encoding.UTF8);
            return true;
        }
    }

    public IReadOnlyList<string> ReadMetrics(string id)
    {
        using (Lock(id)) return File.Exists(MetricsFile(id)) ? File.ReadAllLines(MetricsFile(id)) : [];
    }

    public DateTimeOffset Now() => DateTimeOffset.UtcNow;

    /// <summary>The record; null only when its file does not exist (an unreadable record is skipped with a warning, an IO error throws).</summary>
    private JobRecord? Read(string id)
    {
        var file = RecordFile(id);
        for (var attempt = 0; ; attempt++)
        {
            if (!File.Exists(file)) return null;
            try
            {
                // Not cached: the file is the truth, and it is a few KB.
                return JsonSerializer.Deserialize<JobRecord>(File.ReadAllText(file), JobStore.Json);
            }
            catch (FileNotFoundException) when (attempt < 3)
            {
                // Replaced by a writer between the check and the open: read the new one.
            }
            catch (JsonException e)
            {
                logger.LogWarning("Skipping job {File}: {Message}", file, e.Message);
                return null;
            }
        }
    }

    private void Write(JobRecord job) =>
        AtomicFile.WriteAllText(RecordFile(job.Id), JsonSerializer.Serialize(job, JobStore.Json));

    /// <summary>The job's exclusive lock: a flock, so it excludes other threads of this process (each open is its own lock holder) and other processes.</summary>
    private static IDisposable Lock(string id, string directory) => new JobLock(Path.Combine(directory, "job.lock"));

    private IDisposable Lock(string id) => Lock(id, JobDirectory(id));

    private sealed class JobLock : IDisposable
    {
        private readonly FileStream file;

        public JobLock(string path)
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                    return;
                }
                catch (IOException) when (attempt < 2000 && Directory.Exists(Path.GetDirectoryName(path)))
                {
                    Thread.Sleep(attempt < 20 ? 1 : 10); // another thread or process holds it: updates take milliseconds
                }
            }
        }

        public void Dispose() => file.Dispose();
    }
}
