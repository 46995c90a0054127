using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs.State;

namespace BeitV2.Web.Jobs;

/// <summary>
/// The jobs: their records and metrics (in <see cref="IJobRecordStore"/>: files for the embedded single server,
/// PostgreSQL when several servers share the queue) and their folders under <c>{data}/jobs/{id}/</c> (checkpoints, log,
/// codebook snapshots), which live on the data volume in both modes.
/// </summary>
public sealed class JobStore
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly ILogger<JobStore> logger;
    private readonly IJobRecordStore records;

    /// <summary>The embedded store: records in the job folders (tests and the single-server mode).</summary>
    public JobStore(DataDirectory data, ILogger<JobStore> logger) : this(data, logger, null) { }

    public JobStore(DataDirectory data, ILogger<JobStore> logger, IJobRecordStore? records)
    {
        this.logger = logger;
        JobsDirectory = data.Sub("jobs");
        dataRoot = data.Root;
        this.records = records ?? new FileJobRecordStore(JobsDirectory, logger);
    }

    private readonly string dataRoot;

    public string JobsDirectory { get; }

    public string JobDirectory(string id) => Path.Combine(JobsDirectory, id);
    public string CheckpointDirectory(string id) => Path.Combine(JobDirectory(id), "checkpoints");

    /// <summary>The records are shared through a database (PostgreSQL), not files on this volume.</summary>
    public bool InDatabase => records is not FileJobRecordStore;

    public IReadOnlyList<JobRecord> List() => records.List();

    public JobRecord? Find(string id) => IsSafeId(id) ? records.Find(id) : null;

    public JobRecord Get(string id) => Find(id)
        ?? throw new NotFoundException($"No job with id '{id}'. GET /api/v1/jobs lists the jobs.");

    public JobRecord Create(JobRecord job)
    {
        Directory.CreateDirectory(JobDirectory(job.Id));
        records.Create(job);
        return job;
    }

    /// <summary>Applies <paramref name="change"/> atomically, also against other servers (null from it = no change); returns the record after it.</summary>
    public JobRecord Update(string id, Func<JobRecord, JobRecord?> change) => Update(id, (j, _) => change(j));

    /// <summary>
    /// As <see cref="Update(string, Func{JobRecord, JobRecord?})"/>, with the store's clock (the database's <c>now()</c>
    /// in PostgreSQL): heartbeats and lease decisions use it, so servers on several hosts agree on what is old.
    /// </summary>
    public JobRecord Update(string id, Func<JobRecord, DateTimeOffset, JobRecord?> change) =>
        records.Update(id, change) ?? throw new NotFoundException($"No job with id '{id}' (it was deleted).");

    /// <summary>The store's clock.</summary>
    public DateTimeOffset Now() => records.Now();

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
        Get(id); // 404 before locking
        var trash = Path.Combine(JobsDirectory, $".deleted-{id}-{Guid.NewGuid():N}");
        var deleted = records.Delete(id, job =>
        {
            if (!JobStatus.IsFinished(job.Status))
                throw new ConflictException(
                    $"Job '{id}' is {job.Status}; cancel it (POST /api/v1/jobs/{id}/cancel) and delete it once it has stopped.");
        }, () =>
        {
            if (Directory.Exists(JobDirectory(id))) Directory.Move(JobDirectory(id), trash);
        });
        if (!deleted) throw new NotFoundException($"No job with id '{id}' (it was deleted meanwhile).");
        if (Directory.Exists(trash))
        {
            try
            {
                Directory.Delete(trash, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogWarning("Could not remove the deleted job's folder {Trash}: {Message}", Path.GetFileName(trash), e.Message);
            }
        }
        logger.LogInformation("Job {Id} deleted", id);
    }

    /// <summary>Appends a metrics entry; with <paramref name="runId"/> only while that run holds the job (false: refused, nothing written).</summary>
    public bool AppendMetrics(string id, JsonObject entry, string? runId = null) => records.AppendMetrics(id, entry, runId);

    public JsonArray ReadMetrics(string id)
    {
        var result = new JsonArray();
        foreach (var line in records.ReadMetrics(id))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { result.Add(JsonNode.Parse(line)); }
            catch (JsonException) { logger.LogWarning("Skipping a torn metrics line of job {Id}", id); }
        }
        return result;
    }

    internal static bool IsSafeId(string id) =>
        id.Length is > 0 and <= 100 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}
