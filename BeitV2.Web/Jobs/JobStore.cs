using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Jobs;

/// <summary>
/// One folder per job under <c>{data}/jobs/{id}/</c>: <c>job.json</c> (replaced atomically on every
/// change), <c>metrics.jsonl</c> (the time series, one JSON object per line) and <c>checkpoints/</c>.
/// The records are cached in memory; this process is the only writer.
/// </summary>
public sealed class JobStore
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private readonly Lock gate = new();
    private readonly Dictionary<string, JobRecord> jobs = new(StringComparer.Ordinal);
    private readonly ILogger<JobStore> logger;

    public JobStore(DataDirectory data, ILogger<JobStore> logger)
    {
        this.logger = logger;
        JobsDirectory = data.Sub("jobs");
        foreach (var dir in Directory.EnumerateDirectories(JobsDirectory))
        {
            var file = Path.Combine(dir, "job.json");
            if (!File.Exists(file)) continue;
            try
            {
                if (JsonSerializer.Deserialize<JobRecord>(File.ReadAllText(file), Json) is { } job) jobs[job.Id] = job;
            }
            catch (Exception e) when (e is JsonException or IOException)
            {
                logger.LogWarning("Skipping job {File}: {Message}", file, e.Message);
            }
        }
    }

    public string JobsDirectory { get; }

    public string JobDirectory(string id) => Path.Combine(JobsDirectory, id);
    public string CheckpointDirectory(string id) => Path.Combine(JobDirectory(id), "checkpoints");
    private string MetricsFile(string id) => Path.Combine(JobDirectory(id), "metrics.jsonl");

    public IReadOnlyList<JobRecord> List()
    {
        lock (gate) return jobs.Values.OrderBy(j => j.CreatedAt).ToList();
    }

    public JobRecord? Find(string id)
    {
        lock (gate) return jobs.GetValueOrDefault(id);
    }

    public JobRecord Get(string id) => Find(id)
        ?? throw ApiProblemException.NotFound($"No job with id '{id}'. GET /api/v1/jobs lists the jobs.");

    public JobRecord Create(JobRecord job)
    {
        lock (gate)
        {
            Directory.CreateDirectory(JobDirectory(job.Id));
            Write(job);
            jobs[job.Id] = job;
            return job;
        }
    }

    /// <summary>Applies <paramref name="change"/> atomically (null from it = no change); returns the record after it.</summary>
    public JobRecord Update(string id, Func<JobRecord, JobRecord?> change)
    {
        lock (gate)
        {
            var current = jobs.GetValueOrDefault(id) ?? throw new KeyNotFoundException($"job {id}");
            var next = change(current);
            if (next is null || ReferenceEquals(next, current)) return current;
            Write(next);
            jobs[id] = next;
            return next;
        }
    }

    public void AppendMetrics(string id, JsonObject entry)
    {
        var line = entry.ToJsonString(new JsonSerializerOptions(JsonSerializerDefaults.Web)) + "\n";
        lock (gate) File.AppendAllText(MetricsFile(id), line, Encoding.UTF8);
    }

    public JsonArray ReadMetrics(string id)
    {
        var result = new JsonArray();
        string[] lines;
        lock (gate) lines = File.Exists(MetricsFile(id)) ? File.ReadAllLines(MetricsFile(id)) : [];
        foreach (var line in lines)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { result.Add(JsonNode.Parse(line)); }
            catch (JsonException) { logger.LogWarning("Skipping a torn metrics line of job {Id}", id); }
        }
        return result;
    }

    private void Write(JobRecord job) =>
        AtomicFile.WriteAllText(Path.Combine(JobDirectory(job.Id), "job.json"), JsonSerializer.Serialize(job, Json));
}
