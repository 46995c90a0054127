namespace BeitV2.Web.Configuration;

/// <summary><c>Storage:*</c>: where models, datasets, checkpoints and job storage live.</summary>
public sealed class StorageOptions
{
    public const string Section = "Storage";
    /// <summary>Relative paths are resolved against the app's content root.</summary>
    public string DataDirectory { get; set; } = "data";
    /// <summary>Largest extracted size of one uploaded dataset, in bytes (413 above it).</summary>
    public long MaxDatasetBytes { get; set; } = 2L * 1024 * 1024 * 1024;
    /// <summary>Quota for everything under the data directory, in bytes; an upload that would pass it gets 507. 0 = no quota.</summary>
    public long MaxDataBytes { get; set; }
    /// <summary>Free disk space an upload must leave on the data directory's file system, in bytes (507 otherwise).</summary>
    public long MinFreeBytes { get; set; } = 512L * 1024 * 1024;
    /// <summary>
    /// With shared job storage (several servers on one data directory), the start-up sweep keeps
    /// temporary files and folders younger than this many minutes: they may be another server's work in progress.
    /// </summary>
    public int SweepMinAgeMinutes { get; set; } = 60;
}

/// <summary><c>Models:*</c>: the bundled default models.</summary>
public sealed class ModelsOptions
{
    public const string Section = "Models";
    /// <summary>Copy the bundled default models into an empty registry at start-up.</summary>
    public bool SeedDefaults { get; set; } = true;
    /// <summary>Where the bundled models are (model packages + <c>defaults.json</c>); default: <c>DefaultModels</c> next to the app.</summary>
    public string? BundledDirectory { get; set; }

    /// <summary>The bundle folder in use: <see cref="BundledDirectory"/>, or <c>DefaultModels</c> next to the app.</summary>
    public string Bundle => BundledDirectory ?? Path.Combine(AppContext.BaseDirectory, "DefaultModels");
}

/// <summary><c>Ml:*</c>: the device switch and CPU threads for torch.</summary>
public sealed class MlOptions
{
    public const string Section = "Ml";
    /// <summary><c>auto</c>, <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; set; } = "auto";
    /// <summary>Intra-op threads for libtorch; 0 = number of cores.</summary>
    public int Threads { get; set; }
    /// <summary>
    /// Inference compute precision: <c>fp32</c> (default), <c>bf16</c> or <c>fp16</c> (linear layers,
    /// attention matmuls and convolutions in that dtype; weights, normalisation and softmax in float32).
    /// fp16 needs a CUDA device; bf16 also runs on the CPU.
    /// </summary>
    public string InferencePrecision { get; set; } = "fp32";
    /// <summary>TF32 tensor-core math for float32 matmuls/convolutions on Ampere+ GPUs (off: float32 results stay exact to 1e-5).</summary>
    public bool AllowTf32 { get; set; }
    /// <summary>
    /// Devices of the training workers, comma-separated (<c>cuda:0,cuda:1</c>, <c>cpu</c>); empty: every GPU
    /// for <c>auto</c>/<c>cuda</c> (the CPU without CUDA), the <c>Device</c> itself for <c>cuda:N</c> or <c>cpu</c>.
    /// </summary>
    public string? TrainingDevices { get; set; }
}

/// <summary><c>Inference:*</c>: the serving engine, dynamic batching and back-pressure.</summary>
public sealed class InferenceOptions
{
    public const string Section = "Inference";
    /// <summary>
    /// What runs the models: <c>onnx</c> (default; ONNX Runtime on a graph exported once per model package and cached
    /// beside it) or <c>torch</c> (TorchSharp). Kinds without an exporter, and models whose export or session fails,
    /// are served by TorchSharp under <c>onnx</c> too (logged; <c>/api/v1/info</c> names the engine of each loaded model).
    /// </summary>
    public string Engine { get; set; } = "onnx";
    /// <summary>
    /// Precision of the exported graphs: <c>fp32</c> (default) or <c>int8</c> (dynamic quantisation of the MatMul weights;
    /// needs <c>Engine=onnx</c>: the server refuses to start with int8 on the torch engine). TorchSharp's own
    /// mixed precision is <c>Ml:InferencePrecision</c>.
    /// </summary>
    public string Precision { get; set; } = "fp32";
    /// <summary>ONNX Runtime session options (<c>Inference:Onnx:*</c>), one session per loaded model.</summary>
    public InferenceOnnxOptions Onnx { get; set; } = new();
    /// <summary>Most images merged into one forward pass.</summary>
    public int MaxBatch { get; set; } = 8;
    /// <summary>How long the first image of a batch may wait for others that have not arrived yet (0: requests the server already has are gathered by MaxGatherMs; a lone request starts at once).</summary>
    public int MaxWaitMs { get; set; }
    /// <summary>
    /// How long the first image of a batch may wait for requests that have arrived and are still being
    /// read, decoded and resized (the server knows they are coming); 0 turns this off.
    /// </summary>
    public int MaxGatherMs { get; set; } = 100;
    /// <summary>Inference requests processed at once (ASP.NET Core concurrency limiter); more wait in a queue of MaxQueued, then get 429.</summary>
    public int MaxInFlight { get; set; } = 64;
    /// <summary>Inference requests waiting (oldest first) for one of the MaxInFlight permits; beyond this 429 with Retry-After.</summary>
    public int MaxQueued { get; set; } = 32;
    /// <summary>Loaded models kept in memory (least recently used ones are unloaded).</summary>
    public int MaxLoadedModels { get; set; } = 4;
    /// <summary>Load the default tokenizer, classifier and segmenter at start-up and run one batch through each.</summary>
    public bool WarmUp { get; set; } = true;
}

/// <summary><c>Inference:Onnx:*</c>: how ONNX Runtime sessions are made (see <see cref="Ml.Onnx.OnnxSessionSettings"/>).</summary>
public sealed class InferenceOnnxOptions
{
    /// <summary>Threads of each model's intra-op pool; 0 = <c>Ml:Threads</c> (0 there: one per physical core).</summary>
    public int IntraOpThreads { get; set; }
    /// <summary>Threads for independent graph branches (the graphs run sequentially, so 1 is enough).</summary>
    public int InterOpThreads { get; set; } = 1;
    /// <summary>ONNX Runtime's CPU memory arena (reuses activation buffers but keeps the largest batch's peak for good; off, the default, returns memory after each batch).</summary>
    public bool Arena { get; set; }
    /// <summary>Graph optimisation level: <c>disable</c>, <c>basic</c>, <c>extended</c> or <c>all</c>.</summary>
    public string GraphOptimization { get; set; } = "all";
    /// <summary>Pre-packed MatMul weights (faster GEMMs for a second copy of the weights in memory).</summary>
    public bool Prepacking { get; set; } = true;
    /// <summary>Idle intra-op threads spin before sleeping (ONNX Runtime's default); off frees the cores sooner on a shared machine.</summary>
    public bool AllowSpinning { get; set; } = true;
    /// <summary>int8 GEMM kernels on x64: <c>auto</c> (exact u8·u8 on CPUs without VNNI), <c>fast</c> (u8·s8) or <c>exact</c> (u8·u8).</summary>
    public string Int8Kernels { get; set; } = "auto";

    public Ml.Onnx.OnnxSessionSettings ToSettings() => new()
    {
        IntraOpThreads = IntraOpThreads,
        InterOpThreads = InterOpThreads,
        Arena = Arena,
        GraphOptimization = GraphOptimization,
        Prepacking = Prepacking,
        AllowSpinning = AllowSpinning,
        Int8Kernels = Int8Kernels,
    };
}

/// <summary><c>Limits:*</c>: input limits.</summary>
public sealed class LimitsOptions
{
    public const string Section = "Limits";
    public long MaxUploadBytes { get; set; } = 20L * 1024 * 1024;
    public long MaxImagePixels { get; set; } = 40_000_000;
    public int MaxImagesPerRequest { get; set; } = 32;
    /// <summary>Decoded pixels of all the images of one request together, checked from their headers before any is decoded.</summary>
    public long MaxPixelsPerRequest { get; set; } = 64_000_000;
    /// <summary>Longest side / shortest side of an uploaded image (thinner images get 422).</summary>
    public double MaxAspectRatio { get; set; } = 100;
    /// <summary>Decoded pixel bytes (RGB, 3 per pixel) held by all requests at once; beyond it decoding waits.</summary>
    public long MaxDecodeBytes { get; set; } = 512L * 1024 * 1024;
    /// <summary>How long a request waits for decode budget before it gets 429 (0: refuse at once).</summary>
    public int DecodeQueueTimeoutMs { get; set; } = 10_000;
    /// <summary>Checkpoint imports (official files are 0.3–1.3 GB).</summary>
    public long MaxImportBytes { get; set; } = 2L * 1024 * 1024 * 1024;
}

/// <summary><c>Security:*</c>: API keys and what may run without one (see Infrastructure/ApiKeyAuthentication.cs).</summary>
public sealed class SecurityOptions
{
    public const string Section = "Security";
    /// <summary>The API key (<c>X-Api-Key</c> or <c>Authorization: Bearer</c>); when any key is set, every route but health and the static UI needs one.</summary>
    public string? ApiKey { get; set; }
    /// <summary>More keys (<c>Security:ApiKeys:0..n</c>): one per client, or the old and the new one while rotating.</summary>
    public List<string> ApiKeys { get; set; } = [];
    /// <summary>With a key set, the inference routes (tokens, embeddings, classify, segment) answer without one; everything else still needs it.</summary>
    public bool AnonymousInference { get; set; }
    /// <summary>Start on a non-loopback address without any key (everything open to whoever reaches the port); a warning is logged at every start.</summary>
    public bool AllowAnonymous { get; set; }
    /// <summary>Deprecated (use <c>AnonymousInference</c>): <c>false</c> opens inference like <c>AnonymousInference=true</c>; <c>true</c> is the default now.</summary>
    public bool? RequireKeyForInference { get; set; }

    /// <summary>The configured keys (<c>ApiKey</c> and <c>ApiKeys</c>), blanks dropped.</summary>
    public IReadOnlyList<string> ConfiguredKeys() =>
        new[] { ApiKey }.Concat(ApiKeys).Where(k => !string.IsNullOrWhiteSpace(k)).Select(k => k!.Trim()).Distinct(StringComparer.Ordinal).ToList();

    public bool InferenceIsAnonymous() => AnonymousInference || RequireKeyForInference == false;
}

/// <summary><c>RateLimits:*</c>: optional per-client request budget on <c>/api</c> (token bucket per API key, else per client address).</summary>
public sealed class RateLimitsOptions
{
    public const string Section = "RateLimits";
    /// <summary>Requests per minute per API key or client address (bursts up to the same number); 0 turns it off.</summary>
    public int PerKeyTokensPerMinute { get; set; }
}
