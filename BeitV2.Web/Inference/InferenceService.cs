using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Inference;

/// <summary>
/// The shared steps of every inference request: pick the model (explicit id or the default of the
/// right kind), check it can do the operation, decode the uploads,
/// and run each image through the model's batching worker.
/// </summary>
public sealed class InferenceService(ModelRegistry registry, ModelHost host, UploadedImageReader reader,
    ArrivingRequests arriving)
{
    /// <summary>Resolves the model for an operation; <paramref name="kinds"/> are the acceptable API kinds, in order of preference for the default.</summary>
    public ModelInfo ResolveModel(string? id, string operation, params string[] kinds)
    {
        if (!string.IsNullOrWhiteSpace(id))
        {
            var info = registry.Get(id);
            if (!kinds.Contains(info.Kind))
                throw ApiProblemException.BadRequest(
                    $"Model '{id}' is a {info.Kind}; {operation} needs a {string.Join(" or ", kinds)}.");
            return info;
        }
        foreach (var kind in kinds)
            if (registry.DefaultId(kind) is { } defaultId)
                return registry.Get(defaultId);
        throw ApiProblemException.NotReady(
            $"No {string.Join(" or ", kinds)} model is registered, so {operation} cannot run. Import one with " +
            "POST /api/v1/models/import (an official BEiT v2 .pth or timm .safetensors file).");
    }

    /// <summary>Decodes the request's images and runs <paramref name="operation"/> on each; results in image order.</summary>
    public async Task<InferenceRun<T>> RunAsync<T>(HttpRequest request, ModelInfo info, string operation, CancellationToken ct)
    {
        // Admission (MaxInFlight, MaxQueued) is the rate limiter's "inference" policy, before the endpoint runs.
        InferenceMetrics.InFlight.Inc();
        using var inFlight = new InFlightGauge();
        // Counted from here until its images are queued, so the model's worker can wait for them (MaxGatherMs).
        using var arrival = arriving.Enter(info.Id);
        var images = await reader.ReadAsync(request, ct);
        try
        {
            var worker = await host.GetAsync(info);
            if (!worker.Model.Operations.Contains(operation))
                throw ApiProblemException.BadRequest($"Model '{info.Id}' ({info.Kind}) does not support {operation}.");
            var input = worker.Model.Input;
            var tasks = new List<Task<object>>(images.Count);
            var plans = new List<BeitV2.Ml.Imaging.EvalTransformPlan?>(images.Count);
            foreach (var image in images)
            {
                var pixels = input.Prepare(image.Image, out var plan);
                plans.Add(plan);
                var task = worker.TryEnqueue(operation, pixels, pooled: true);
                if (task is null)
                {
                    // Unloaded between lookup and enqueue (LRU eviction or delete): load again once.
                    worker = await host.GetAsync(registry.Get(info.Id));
                    task = worker.TryEnqueue(operation, pixels, pooled: true)
                           ?? throw ApiProblemException.NotReady($"Model '{info.Id}' is being unloaded; retry.");
                }
                tasks.Add(task);
            }
            arrival.Dispose();
            var results = await Task.WhenAll(tasks);
            InferenceMetrics.Requests.WithLabels(operation, "ok").Inc();
            return new InferenceRun<T>(info, images, plans, results.Cast<T>().ToList());
        }
        catch
        {
            InferenceMetrics.Requests.WithLabels(operation, "error").Inc();
            foreach (var image in images) image.Dispose();
            throw;
        }
    }
}

/// <summary>Counts a request in <see cref="InferenceMetrics.InFlight"/> until disposed.</summary>
internal sealed class InFlightGauge : IDisposable
{
    private int disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0) InferenceMetrics.InFlight.Dec();
    }
}

/// <summary>The decoded images of a request with the model's result for each; disposing frees the images.</summary>
public sealed record InferenceRun<T>(ModelInfo Model, IReadOnlyList<UploadedImage> Images, IReadOnlyList<BeitV2.Ml.Imaging.EvalTransformPlan?> Plans, IReadOnlyList<T> Results) : IDisposable
{
    public void Dispose()
    {
        foreach (var image in Images) image.Dispose();
    }
}
