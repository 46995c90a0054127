using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Serving;
using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;
using TorchSharp;

namespace BeitV2.Web.Inference;

/// <summary>
/// Keeps registered models loaded on the configured device, each with its batching worker; loads
/// on first use, unloads the least recently used beyond <c>MaxLoadedModels</c>, and drops a model
/// when the registry deletes it.
/// </summary>
public sealed class ModelHost : IDisposable
{
    private readonly ModelRegistry registry;
    private readonly InferenceOptions options;
    private readonly ILogger<ModelHost> logger;
    private readonly ComputeDevices devices;
    private readonly ArrivingRequests arriving;
    private readonly torch.Device device;
    private readonly Lock gate = new();
    private readonly Dictionary<string, (Lazy<Task<BatchingWorker>> Worker, long LastUsed)> loaded = new();
    private long clock;

    public ModelHost(ModelRegistry registry, IOptions<InferenceOptions> options, ComputeDevices devices, ILogger<ModelHost> logger,
        ArrivingRequests arriving)
    {
        this.arriving = arriving;
        this.registry = registry;
        this.options = options.Value;
        this.logger = logger;
        this.devices = devices;
        device = devices.InferenceDevice;
        registry.ModelChanged += Unload;
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
            var package = ModelPackage.Load(registry.PackageDirectory(info.Id), device);
            package.Module.eval();
            ServedModel served;
            try
            {
                served = ModelCatalog.Default.Serve(package)
                         ?? throw new InvalidRequestException($"Model '{info.Id}' ({info.Kind}) cannot be served for inference.");
            }
            catch
            {
                package.Dispose();
                throw;
            }
            logger.LogInformation("Loaded model {Id} on {Device} ({Precision})", info.Id, DeviceName, devices.InferencePrecision.Name());
            return new BatchingWorker(info.Id, served, options, logger, devices.Gate(DeviceName), devices.InferencePrecision,
                () => arriving.Count(info.Id));
        }
        catch
        {
            lock (gate) loaded.Remove(info.Id);
            throw;
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
            entry.Worker.Value.ContinueWith(t => { if (t.IsCompletedSuccessfully) t.Result.Dispose(); }, TaskScheduler.Default);
        logger.LogInformation("Unloaded model {Id}", id);
    }

    public void Dispose()
    {
        lock (gate)
            foreach (var id in loaded.Keys.ToList()) Remove(id);
    }
}
