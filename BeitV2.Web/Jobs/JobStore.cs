using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Jobs;

/// <summary>
/// One folder per job under <c>{data}/jobs/{id}/</c>: <c>job.json</c> (replaced atomically on every
/// change), <c>metrics.jsonl</c> (the time series, one JSON object per line) and <c>checkpoints/</c>.
/// </summary>
/// <remarks>
/// Several servers may share the data directory (scale-out), so the files are the truth: every
/// read parses <c>job.json</c> (a few KB), and every
/// change is a read-modify-write under an exclusive lock on <c>job.lock</c>. .NET takes that lock
/// with <c>flock</c> on Linux, which holds between processes and containers on one host and on NFSv4.
/// </remarks>
public sealed class JobStore
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly ILogger<JobStore> logger;

    public JobStore(DataDirectory data, ILogger<JobStore> logger)
    {
        this.logger = logger;
        JobsDirectory = data.Sub("jobs");
        dataRoot = data.Root;
    }

    private readonly string dataRoot;

    public string JobsDirectory { get; }

    public string JobDirectory(string id) => Path.Combine(JobsDirectory, id);
    public string CheckpointDirectory(string id) => Path.Combine(JobDirectory(id), "checkpoints");
    private string MetricsFile(string id) => Path.Combine(JobDirectory(id), "metrics.jsonl");
    private string RecordFile(string id) => Path.Combine(JobDirectory(id), "job.json");

    public IReadOnlyList<JobRecord> List() =>
        Directory.EnumerateDirectories(JobsDirectory).Select(Path.GetFileName).Where(name => IsSafeId(name!)).Select(name => Read(name!))
            .OfType<JobRecord>().OrderBy(j => j.CreatedAt).ToList();

    public JobRecord? Find(string id) => IsSafeId(id) ? Read(id) : null;

    public JobRecord Get(string id) => Find(id)
        ?? throw new NotFoundException($"No job with id '{id}'. GET /api/v1/jobs lists the jobs.");

    public JobRecord Create(JobRecord job)
    {
        Directory.CreateDirectory(JobDirectory(job.Id));
        using (Lock(job.Id)) Write(job);
        return job;
    }

    /// <summary>Applies <paramref name="change"/> atomically, also against other processes (null from it = no change); returns the record after it.</summary>
    public JobRecord Update(string id, Func<JobRecord, JobRecord?> change)
    {
        using var held = Lock(id);
        var current = Read(id) ?? throw new KeyNotFoundException($"job {id}");
        var next = change(current);
        if (next is null || ReferenceEquals(next, current)) return current;
        Write(next);
        return next;
    }

    /// <summary>
    /// The record as clients read it: with <see cref="JobRecord.DiskBytes"/> (what its folder holds now:
    /// checkpoints, metrics, log) and checkpoint paths relative to the data directory (the record on disk
    /// keeps absolute ones for resuming; a client must not learn where the server keeps its files).
    /// </summary>
    public JobRecord ForClient(JobRecord job) => job with
    {
        DiskBytes = DiskUsage.Of(JobDirectory(job.Id)),
        Checkpoints = [.. job.Checkpoints.Select(c => c with { Path = RelativeToData(c.Path) })],
    };

    /// <summary>A path under the data directory as a relative one (with '/' separators); other paths keep only their file name.</summary>
    public string RelativeToData(string path)
    {
        var relative = Path.GetRelativePath(dataRoot, path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative)
            ? Path.GetFileName(path)
            : relative.Replace(Path.DirectorySeparatorChar, '/');
    }

    /// <summary>
    /// Deletes a finished job's folder: record, metrics, log and checkpoints (not the model it registered).
    /// Under the job's lock the status is checked (409 while queued or running) and the folder renamed to a
    /// hidden <c>.deleted-*</c> sibling, so no update interleaves and the job disappears at once, also for
    /// other servers; the renamed folder is then removed (after a crash, by the start-up sweep).
    /// </summary>
    public void Delete(string id)
    {
        Get(id); // 404 before locking inside a folder that does not exist
        var trash = Path.Combine(JobsDirectory, $".deleted-{id}-{Guid.NewGuid():N}");
        try
        {
            using (Lock(id))
            {
                var job = Get(id);
                if (!JobStatus.IsFinished(job.Status))
                    throw new ConflictException(
                        $"Job '{id}' is {job.Status}; cancel it (POST /api/v1/jobs/{id}/cancel) and delete it once it has stopped.");
                Directory.Move(JobDirectory(id), trash);
            }
        }
        catch (DirectoryNotFoundException)
        {
            throw new NotFoundException($"No job with id '{id}' (it was deleted meanwhile).");
        }
        try
        {
            Directory.Delete(trash, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not remove the deleted job's folder {Trash}: {Message}", Path.GetFileName(trash), e.Message);
        }
        logger.LogInformation("Job {Id} deleted", id);
    }

    public void AppendMetrics(string id, JsonObject entry)
    {
        var line = entry.ToJsonString(new JsonSerializerOptions(JsonSerializerDefaults.Web)) + "\n";
        using (Lock(id)) File.AppendAllText(MetricsFile(id), line, Encoding.UTF8);
    }

    public JsonArray ReadMetrics(string id)
    {
        var result = new JsonArray();
        string[] lines;
        using (Lock(id)) lines = File.Exists(MetricsFile(id)) ? File.ReadAllLines(MetricsFile(id)) : [];
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { result.Add(JsonNode.Parse(line)); }
            catch (JsonException) { logger.LogWarning("Skipping a torn metrics line of job {Id}", id); }
        }
        return result;
    }

    private static bool IsSafeId(string id) =>
        id.Length is > 0 and <= 100 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private JobRecord? Read(string id)
    {
        var file = RecordFile(id);
        for (var attempt = 0; ; attempt++)
        {
            if (!File.Exists(file)) return null;
            try
            {
                // Not cached: another server may have replaced the file within the timestamps' granularity.
                return JsonSerializer.Deserialize<JobRecord>(File.ReadAllText(file), Json);
            }
            catch (FileNotFoundException) when (attempt < 3)
            {
                // Replaced by a writer between the check and the open: read the new one.
            }
            catch (Exception e) when (e is JsonException or IOException)
            {
                logger.LogWarning("Skipping job {File}: {Message}", file, e.Message);
                return null;
            }
        }
    }

    private void Write(JobRecord job) =>
        AtomicFile.WriteAllText(RecordFile(job.Id), JsonSerializer.Serialize(job, Json));

    /// <summary>The job's exclusive lock: a flock, so it excludes other threads of this process (each open is its own lock holder) and other processes.</summary>
    private IDisposable Lock(string id) => new JobLock(Path.Combine(JobDirectory(id), "job.lock"));

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
