using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Serialization;
using BeitV2.Web.Evaluation;

namespace BeitV2.Web.Jobs;

/// <summary>
/// What a job trains (or, for <c>evaluate</c>, scores). The names are the API's <c>type</c> and the <c>type</c> of every <c>job.json</c>, so they never
/// change (job records written by earlier versions read back). A job type is not a model kind: a
/// <c>tokenizer</c> job trains a tokenizer, but a <c>segmentation</c> job trains a segmenter and a
/// <c>pretrain</c> job a MIM model (whose API kind is also <c>pretrain</c>).
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<JobType>))]
public enum JobType
{
    [JsonStringEnumMemberName("tokenizer")] Tokenizer,
    [JsonStringEnumMemberName("pretrain")] Pretrain,
    [JsonStringEnumMemberName("linear-probe")] LinearProbe,
    [JsonStringEnumMemberName("finetune")] FineTune,
    [JsonStringEnumMemberName("segmentation")] Segmentation,
    /// <summary>A small convolutional classifier trained with labels: the stand-in VQ-KD teacher where CLIP / DINO cannot be downloaded.</summary>
    [JsonStringEnumMemberName("teacher")] Teacher,
    /// <summary>Every stage in one job, on Fashion-MNIST: what trained the bundled default models.</summary>
    [JsonStringEnumMemberName("pipeline")] Pipeline,
    /// <summary>Scores a registered classifier or segmenter on a dataset split; trains nothing, its scores are the job's <c>result</c>.</summary>
    [JsonStringEnumMemberName("evaluate")] Evaluate,
    /// <summary>Embeds (and, with a tokenizer, tokenizes) every image of a dataset into a collection; trains nothing, registers no model.</summary>
    [JsonStringEnumMemberName("index")] Index,
}

/// <summary>The names of <see cref="JobType"/> as clients write them.</summary>
public static class JobTypes
{
    private static readonly Dictionary<JobType, string> Names = Enum.GetValues<JobType>().ToDictionary(t => t,
        t => typeof(JobType).GetField(t.ToString())!.GetCustomAttributes(typeof(JsonStringEnumMemberNameAttribute), false)
            .Cast<JsonStringEnumMemberNameAttribute>().Single().Name);

    /// <summary>Every job type's name, in declaration order.</summary>
    public static IReadOnlyList<string> All { get; } = Enum.GetValues<JobType>().Select(t => Names[t]).ToList();

    /// <summary>The type's name in the API and in job records, e.g. <c>linear-probe</c>.</summary>
    public static string Name(this JobType type) => Names[type];

    /// <summary>The type of a client's name (exact, lower case), false for anything else.</summary>
    public static bool TryParse(string? name, out JobType type)
    {
        foreach (var (t, n) in Names)
            if (n == name)
            {
                type = t;
                return true;
            }
        type = default;
        return false;
    }
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
/// <param name="Epoch">the epoch in progress, counted from 1 ("epoch 3 of 3" on the last one); 0 before the first step.</param>
public sealed record JobProgress(int Epoch, int Epochs, long Step, long Steps, double Fraction, double? EtaSeconds);

/// <summary>A training checkpoint the job wrote and still keeps (config <c>keepCheckpoints</c>, default 3); the newest one is where a resume continues.</summary>
/// <param name="Epoch">the epoch (counted from 1) of the checkpoint's last step: a checkpoint written at the end of epoch 2 says 2.</param>
public sealed record JobCheckpoint(long Step, int Epoch, string Path, DateTimeOffset SavedAt);

/// <summary>The job's persistent record (<c>{data}/jobs/{id}/job.json</c>); also the API's answer.</summary>
public sealed record JobRecord : IJsonOnDeserialized
{
    public required string Id { get; init; }
    public required JobType Type { get; init; }
    public string? Name { get; init; }
    public required string Dataset { get; init; }
    public string? BaseModel { get; init; }

    /// <summary>The model a <c>tokenizer</c> job distils (a teacher: CLIP, DINO or a classifier); null for other jobs.</summary>
    [JsonIgnore]
    public string? Teacher { get => teacher; init => teacher = value; }

    /// <summary>The tokenizer whose codes a <c>pretrain</c> job predicts; null for other jobs.</summary>
    [JsonIgnore]
    public string? Tokenizer { get => tokenizer; init => tokenizer = value; }

    /// <summary>
    /// <see cref="Teacher"/> or <see cref="Tokenizer"/>, whichever the job has, for JSON only: the API's contract names
    /// both <c>teacher</c> (a pretrain job's "teacher" is its tokenizer), and so does every job record on disk.
    /// Public so that the OpenAPI document lists it; code reads and sets <see cref="Teacher"/> or <see cref="Tokenizer"/>.
    /// </summary>
    [JsonPropertyName("teacher"), EditorBrowsable(EditorBrowsableState.Never)]
    public string? TeacherOrTokenizer { get => teacher ?? tokenizer; init => teacher = value; }

    // Set only by initialisers and, for a pretrain job read from JSON, by OnDeserialized.
    private string? teacher, tokenizer;

    void IJsonOnDeserialized.OnDeserialized()
    {
        if (Type == JobType.Pretrain) (tokenizer, teacher) = (teacher, null);
        if (rawResult is { } raw)
        {
            if (Type == JobType.Index) indexResult = raw.Deserialize<IndexJobResult>(ResultOptions);
            else evaluation = raw.Deserialize<EvaluationResult>(ResultOptions);
            rawResult = null;
        }
    }

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
    /// <summary>
    /// An <c>evaluate</c> job's scores once it succeeded (accuracy, per-class scores and confusion matrix, or mIoU and
    /// per-class IoU); null for other jobs. In JSON it is <c>result</c> (see <see cref="ResultJson"/>).
    /// </summary>
    [JsonIgnore]
    public EvaluationResult? Result { get => evaluation; init => evaluation = value; }

    /// <summary>An <c>index</c> job's outcome once it succeeded; null for other jobs. In JSON it is <c>result</c> (see <see cref="ResultJson"/>).</summary>
    [JsonIgnore]
    public IndexJobResult? IndexResult { get => indexResult; init => indexResult = value; }

    /// <summary>The collection an <c>index</c> job fills (<c>{data}/collections/{id}</c>); absent for other jobs.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Collection { get; init; }

    /// <summary>
    /// <see cref="Result"/> or <see cref="IndexResult"/>, whichever the job has, for JSON only: the contract names both
    /// <c>result</c>; which one a record holds follows from its <c>type</c>. Absent for other jobs, so their records keep the
    /// shape earlier versions wrote. Code reads and sets <see cref="Result"/> or <see cref="IndexResult"/>.
    /// </summary>
    [JsonPropertyName("result"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull), EditorBrowsable(EditorBrowsableState.Never)]
    public JsonElement? ResultJson
    {
        get => evaluation is not null ? JsonSerializer.SerializeToElement(evaluation, ResultOptions)
            : indexResult is not null ? JsonSerializer.SerializeToElement(indexResult, ResultOptions)
            : rawResult;
        init => rawResult = value is { ValueKind: not JsonValueKind.Null } v ? v.Clone() : null;
    }

    private static readonly JsonSerializerOptions ResultOptions = new(JsonSerializerDefaults.Web);
    private EvaluationResult? evaluation;
    private IndexJobResult? indexResult;
    private JsonElement? rawResult;
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
