using System.Text.Json;
using System.Text.Json.Serialization;

namespace BeitV2.Web.Jobs;

public static class JobTypes
{
    public const string Tokenizer = "tokenizer";
    public const string Pretrain = "pretrain";
    public const string LinearProbe = "linear-probe";
    public const string FineTune = "finetune";
    public const string Segmentation = "segmentation";
    /// <summary>Every stage in one job, on Fashion-MNIST: what trained the bundled default models.</summary>
    public const string Pipeline = "pipeline";

    public static readonly IReadOnlyList<string> All = new[] { Tokenizer, Pretrain, LinearProbe, FineTune, Segmentation, Pipeline };
}

public static class JobStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsFinished(string status) => status is Succeeded or Failed or Cancelled;
}

/// <summary>The contract's progress block.</summary>
public sealed record JobProgress(int Epoch, int Epochs, long Step, long Steps, double Fraction, double? EtaSeconds);

/// <summary>A training checkpoint the job wrote and still keeps (config <c>keepCheckpoints</c>, default 3); the newest one is where a resume continues.</summary>
public sealed record JobCheckpoint(long Step, int Epoch, string Path, DateTimeOffset SavedAt);

/// <summary>The job's persistent record (<c>{data}/jobs/{id}/job.json</c>); also the API's answer.</summary>
public sealed record JobRecord
{
    public required string Id { get; init; }
    public required string Type { get; init; }
    public string? Name { get; init; }
    public required string Dataset { get; init; }
    public string? BaseModel { get; init; }
    public string? Teacher { get; init; }
    public JsonElement? Config { get; init; }
    public required string Status { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public JobProgress Progress { get; init; } = new(0, 0, 0, 0, 0, null);
    [JsonConverter(typeof(FiniteDictionaryConverter))]
    public IReadOnlyDictionary<string, double> LastMetrics { get; init; } = new Dictionary<string, double>();
    public IReadOnlyList<JobCheckpoint> Checkpoints { get; init; } = [];
    public string? OutputModel { get; init; }
    public string? Error { get; init; }
    /// <summary>Bytes the job's folder holds on disk (checkpoints, metrics, log); measured when the API answers, never stored.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? DiskBytes { get; init; }

    /// <summary>Which delivery may run the job: every (re-)enqueue gets a new one, so a stale Hangfire delivery does nothing.</summary>
    public string Attempt { get; init; } = "";
    /// <summary>Runs started (1 + resumes and restarts).</summary>
    public int Runs { get; init; }

    /// <summary>The server running (or that last ran) the job.</summary>
    public string? Server { get; init; }
    /// <summary>The run holding the job: a server that finds another run id in the record has lost the job and stops without writing.</summary>
    public string? RunId { get; init; }
    /// <summary>Renewed every few seconds by the running server; a running job whose heartbeat is old belongs to a dead server and may be taken over.</summary>
    public DateTimeOffset? HeartbeatAt { get; init; }
    /// <summary>Set by a cancel request on any server; the server running the job sees it within about a second, checkpoints and stops.</summary>
    public bool CancelRequested { get; init; }
}

/// <summary>Writes NaN/±inf metric values (a diverged loss) as null so the JSON stays valid for every client.</summary>
internal sealed class FiniteDictionaryConverter : JsonConverter<IReadOnlyDictionary<string, double>>
{
    public override IReadOnlyDictionary<string, double> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var result = new Dictionary<string, double>();
        if (reader.TokenType != JsonTokenType.StartObject) throw new JsonException("expected an object");
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = reader.GetString()!;
            reader.Read();
            result[key] = reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();
        }
        return result;
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, double> value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        foreach (var (k, v) in value)
        {
            writer.WritePropertyName(k);
            if (double.IsFinite(v)) writer.WriteNumberValue(v);
            else writer.WriteNullValue();
        }
        writer.WriteEndObject();
    }
}
