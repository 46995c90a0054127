using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Domain;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Serving;
using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Inference;

/// <summary>
/// Keeps registered models loaded on the configured device and engine (<c>Inference:Engine</c>, see
/// <see cref="ServedModelLoader"/>), each with its batching worker; loads on first use, unloads the least recently
/// used beyond <c>MaxLoadedModels</c>, and drops a model when the registry deletes it.
/// </summary>
/// <remarks>
/// The serving options are checked when the host is built, so a bad engine, precision or ONNX Runtime setting stops
/// the server at start-up with the key to fix. A model the ONNX engine cannot serve (its kind has no exporter yet, or
/// its export or session fails) is served by TorchSharp: logged with the reason, listed in <c>/api/v1/info</c>.
/// </remarks>
public sealed class ModelHost : IDisposable
{
    private readonly ModelRegistry registry;
    private readonly InferenceOptions options;
    private readonly ILogger<ModelHost> logger;
    private readonly ComputeDevices devices;
    private readonly ArrivingRequests arriving;
    private readonly ServingOptions serving;
    private readonly Lock gate = new();
    private readonly Dictionary<string, (Lazy<Task<BatchingWorker>> Worker, long LastUsed)> loaded = new();
    private long clock;

    /// <param name="exporter">writes the ONNX graphs (the catalogue's exporters when null; tests count or fail exports).</param>
    /// <exception cref="InvalidOperationException">an unusable <c>Inference:Engine</c>, <c>Inference:Precision</c> or <c>Inference:Onnx:*</c>.</exception>
    public ModelHost(ModelRegistry registry, IOptions<InferenceOptions> options, ComputeDevices devices, ILogger<ModelHost> logger,
        ArrivingRequests arriving, IOptions<MlOptions> ml, OnnxExporter? exporter = null)
    {
        this.arriving = arriving;
        this.registry = registry;
        this.options = options.Value;
        this.logger = logger;
        this.devices = devices;
        serving = Configure(options.Value, ml.Value, devices, exporter ?? OnnxExporter.Default);
        logger.LogInformation("Inference engine {Engine} ({Precision}) on {Device}", serving.Engine.Name(),
            serving.Engine == ServingEngine.Onnx ? serving.Precision.ToString().ToLowerInvariant() : devices.InferencePrecision.Name(), DeviceName);
        registry.ModelChanged += Unload;
    }

    /// <summary>The serving options from configuration, checked.</summary>
    /// <exception cref="InvalidOperationException">a value the server cannot serve with, naming the key.</exception>
    public static ServingOptions Configure(InferenceOptions options, MlOptions ml, ComputeDevices devices, OnnxExporter exporter)
    {
        if (!ServingEngines.TryParse(options.Engine, out var engine))
            throw new InvalidOperationException($"Inference:Engine '{options.Engine}' is not one of onnx, torch.");
        var precision = options.Precision?.Trim().ToLowerInvariant() switch
        {
            null or "" or "fp32" => OnnxPrecision.Fp32,
            "int8" => OnnxPrecision.Int8,
            _ => throw new InvalidOperationException($"Inference:Precision '{options.Precision}' is not one of fp32, int8."),
        };
        if (precision == OnnxPrecision.Int8 && engine != ServingEngine.Onnx)
            throw new InvalidOperationException(
                "Inference:Precision=int8 needs Inference:Engine=onnx: the int8 graphs run in ONNX Runtime. The torch engine serves float32 " +
                "(or bf16/fp16 with Ml:InferencePrecision).");
        var settings = options.Onnx.ToSettings();
        try
        {
            settings.Validate();
            if (engine == ServingEngine.Onnx) OnnxDevices.RequireCuda(devices.InferenceDeviceName);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        return new ServingOptions
        {
            Engine = engine,
            Precision = precision,
            Device = devices.InferenceDeviceName,
            TorchPrecision = devices.InferencePrecision,
            Tf32 = ml.AllowTf32,
            Threads = ml.Threads,
            Onnx = settings,
            Exporter = exporter,
        };
    }

    /// <summary>The configured engine and precision (a model may still be served by TorchSharp: see <see cref="Served"/>).</summary>
    public ServingOptions Serving => serving;

    /// <summary>The models loaded and ready now, with the engine that serves each.</summary>
    public IReadOnlyList<ServedModelInfo> Served
    {
        get
        {
            lock (gate)
                return loaded.Values.Where(e => e.Worker.IsValueCreated && e.Worker.Value.IsCompletedSuccessfully)
                    .Select(e => e.Worker.Value.Result.Serving).OrderBy(s => s.Id, StringComparer.Ordinal).ToList();
        }
    }

    /// <summary>"cpu" or "cuda:N".</summary>
    public string DeviceName => devices.InferenceDeviceName;

    /// <summary>Ids of the models currently in memory.</summary>
    public IReadOnlyList<string> LoadedIds { get { lock (gate) return loaded.Keys.ToList(); } }

    /// <summary>The worker of a model, loading it if needed. Loading errors surface as the model being unusable.</summary>
    public Task<BatchingWorker> GetAsync(ModelInfo info)
    {
        Lazy<Task<BatchingWorker>> lazy;
        lock (gate)
        {
            if (!loaded.TryGetValue(info.Id, out var entry))
            {
                entry = (new Lazy<Task<BatchingWorker>>(() => Task.Run(() => Load(info))), 0);
                EvictIfFull();
            }
            loaded[info.Id] = (entry.Worker, ++clock);
            lazy = entry.Worker;
            InferenceMetrics.LoadedModels.Set(loaded.Count);
        }
        return lazy.Value;
    }

    private BatchingWorker Load(ModelInfo info)
    {
        try
        {
            ServedModelLoad load;
            try
            {
                load = ServedModelLoader.Load(registry.PackageDirectory(info.Id), serving);
            }
            catch (NotSupportedException)
            {
                throw new InvalidRequestException($"Model '{info.Id}' ({info.Kind}) cannot be served for inference.");
            }
            var engine = load.Engine.Name();
            var graph = load.Engine != ServingEngine.Onnx ? null : load.Graph is null ? "uncached" : load.Graph.Built ? "exported" : "cached";
            if (load.Error is not null)
                logger.LogWarning(load.Error, "Model {Id} ({Kind}) is served by TorchSharp instead of ONNX Runtime: {Reason}. Fix the cause or set " +
                    "Inference:Engine=torch to silence this.", info.Id, load.Kind, load.Fallback);
            else if (load.Fallback is not null)
                logger.LogInformation("Model {Id} ({Kind}) is served by TorchSharp: {Reason}", info.Id, load.Kind, load.Fallback);
            if (load.Graph?.Rebuilt is { } why)
                logger.LogWarning("The cached ONNX graph of model {Id} was rebuilt: {Why}", info.Id, why);
            logger.LogInformation("Loaded model {Id} on {Device}: {Engine} {Precision}{Graph} in {Ms:F0} ms", info.Id, DeviceName, engine, load.Precision,
                graph switch
                {
                    "exported" => $", graph exported and cached ({load.Graph!.ExportTime.TotalMilliseconds:F0} ms, {load.Graph.Bytes / 1e6:F1} MB)",
                    "cached" => ", graph from the cache (no export)",
                    "uncached" => ", graph exported to memory (the package folder is not writable)",
                    _ => "",
                }, load.LoadTime.TotalMilliseconds);
            var described = new ServedModelInfo(info.Id, engine, load.Precision, DeviceName, load.Fallback, Math.Round(load.LoadTime.TotalSeconds, 3), graph);
            InferenceMetrics.ModelInfo.WithLabels(info.Id, engine, load.Precision, DeviceName).Set(1);
            return new BatchingWorker(info.Id, load.Model, options, logger, devices.Gate(DeviceName), () => arriving.Count(info.Id), described)
            {
                OutOfDomain = ReadDomainFit(info.Id),
            };
        }
        catch
        {
            lock (gate) loaded.Remove(info.Id);
            throw;
        }
    }

    /// <summary>
    /// The package's out-of-domain fit, or null: none fitted, or one that cannot be used (damaged, or of another feature
    /// length than the model gives), which is logged and leaves the model served without a score rather than not at all.
    /// </summary>
    private DomainFit? ReadDomainFit(string id)
    {
        try
        {
            var directory = registry.PackageDirectory(id);
            return ModelPackage.ReadDomainFit(directory, ModelPackage.ReadManifest(directory));
        }
        catch (CheckpointException e)
        {
            logger.LogWarning("Model {Id} is served without an out-of-domain score: {Message}", id, e.Message);
            return null;
        }
    }

    private void EvictIfFull()
    {
        while (loaded.Count >= Math.Max(1, options.MaxLoadedModels))
        {
            var victim = loaded.MinBy(kv => kv.Value.LastUsed).Key;
            Remove(victim);
        }
    }

    public void Unload(string id)
    {
        lock (gate)
        {
            Remove(id);
            InferenceMetrics.LoadedModels.Set(loaded.Count);
        }
    }

    private void Remove(string id)
    {
        if (!loaded.Remove(id, out var entry)) return;
        if (entry.Worker.IsValueCreated)
            entry.Worker.Value.ContinueWith(t =>
            {
                if (!t.IsCompletedSuccessfully) return;
                var s = t.Result.Serving;
                InferenceMetrics.ModelInfo.RemoveLabelled(s.Id, s.Engine, s.Precision, s.Device);
                t.Result.Dispose();
            }, TaskScheduler.Default);
        logger.LogInformation("Unloaded model {Id}", id);
    }

    public void Dispose()
    {
        lock (gate)
            foreach (var id in loaded.Keys.ToList()) Remove(id);
    }
}
