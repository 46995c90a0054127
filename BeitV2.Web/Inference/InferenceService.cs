using BeitV2.Ml.Domain;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Serving;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Inference;

/// <summary>
/// The shared steps of every inference request: pick the model (explicit id or the default of the
/// right kind) and check that its kind serves the operation (the one check, <see cref="OperationKinds"/>), check the uploads' headers (admission, MaxInFlight and
/// MaxQueued, is the rate limiter's "inference" policy, before the endpoint runs), then decode them one at
/// a time under the process-wide <see cref="DecodeBudget"/>, shrink each to the model's input and release
/// its full-size pixels before the next is decoded, and run each input through the model's batching worker.
/// </summary>
public sealed class InferenceService(ModelRegistry registry, ModelHost host, UploadedImageReader reader,
    ArrivingRequests arriving, DecodeBudget budget)
{
    /// <summary>Resolves the model for an operation: the one named, if its kind serves the operation, else the default of the first kind that has one.</summary>
    public ModelInfo ResolveModel(string? id, Operation op)
    {
        var (operation, kinds) = OperationKinds.For(op);
        if (!string.IsNullOrWhiteSpace(id))
        {
            var info = registry.Get(id);
            if (!kinds.Contains(info.Kind))
                throw new InvalidRequestException(
                    $"Model '{id}' is a {info.Kind}; {operation} needs a {string.Join(" or ", kinds)}.");
            return info;
        }
        if (OperationKinds.DefaultModelId(op, registry) is { } defaultId) return registry.Get(defaultId);
        throw new ModelNotReadyException(
            $"No {string.Join(" or ", kinds)} model is registered, so {operation} cannot run. Import one with " +
            "POST /api/v1/models/import (an official BEiT v2 .pth or timm .safetensors file).");
    }

    /// <summary>Decodes the request's images and runs <paramref name="operation"/> on each (of a model <see cref="ResolveModel"/> returned); results in image order.</summary>
    /// <param name="keepImages">Keep the decoded full-size images in the result (for responses drawn over
    /// them); otherwise only their sizes are kept.</param>
    public async Task<InferenceRun<T>> RunAsync<T>(HttpRequest request, ModelInfo info, ServedOperation<T> operation, CancellationToken ct, bool keepImages = false)
    {
        // Admission (MaxInFlight, MaxQueued) is the rate limiter's "inference" policy, before the endpoint runs.
        InferenceMetrics.InFlight.Inc();
        using var inFlight = new InFlightGauge();
        // Counted from here until its images are queued, so the model's worker can wait for them (MaxGatherMs).
        using var arrival = arriving.Enter(info.Id);
        var uploads = await reader.ReadAsync(request, ct);   // headers only: every limit checked, nothing decoded
        var images = new List<UploadedImage>(uploads.Count);
        var label = operation.Operation.Name();
        try
        {
            var worker = await host.GetAsync(info);
            var input = worker.Input;
            var tasks = new List<Task<T>>(uploads.Count);
            var plans = new List<EvalTransformPlan?>(uploads.Count);
            foreach (var upload in uploads)
            {
                var (image, pixels, plan) = await DecodeAndShrinkAsync(upload, input, keepImages, ct);
                images.Add(image);
                plans.Add(plan);
                var task = worker.TryEnqueue(operation, pixels, pooled: true);
                if (task is null)
                {
                    // Unloaded between lookup and enqueue (LRU eviction or delete): load again once.
                    worker = await host.GetAsync(registry.Get(info.Id));
                    task = worker.TryEnqueue(operation, pixels, pooled: true)
                           ?? throw new ModelNotReadyException($"Model '{info.Id}' is being unloaded; retry.");
                }
                tasks.Add(task);
            }
            arrival.Dispose();
            var results = await Task.WhenAll(tasks);
            InferenceMetrics.Requests.WithLabels(label, "ok").Inc();
            return new InferenceRun<T>(info, images.Select((image, i) => new ImageRun<T>(image, plans[i], results[i])).ToList())
            {
                OutOfDomain = worker.OutOfDomain,
            };
        }
        catch
        {
            InferenceMetrics.Requests.WithLabels(label, "error").Inc();
            foreach (var image in images) image.Dispose();
            throw;
        }
    }

    // One image's full-size pixels exist only inside its share of the decode budget: decoded, turned into the
    // model's (small) input, and released, unless the response is drawn over the image (then the budget is
    // held until the run is disposed).
    private async Task<(UploadedImage Image, float[] Pixels, EvalTransformPlan? Plan)> DecodeAndShrinkAsync(
        EncodedImage upload, ModelInput input, bool keep, CancellationToken ct)
    {
        var lease = await budget.AcquireAsync(upload.Header.DecodedBytes, ct);
        SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>? image = null;
        try
        {
            image = reader.Decode(upload);
            var pixels = input.Prepare(image, out var plan);
            // The oriented size (EXIF rotation may swap the header's width and height).
            var result = keep
                ? new UploadedImage(upload.Index, upload.FileName, image.Width, image.Height, image, lease)
                : new UploadedImage(upload.Index, upload.FileName, image.Width, image.Height, null);
            if (!keep)
            {
                image.Dispose();
                lease.Dispose();
            }
            return (result, pixels, plan);
        }
        catch
        {
            image?.Dispose();
            lease.Dispose();
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

/// <summary>The decoded images of a request, each with the model's result; disposing frees the images.</summary>
public sealed record InferenceRun<T>(ModelInfo Model, IReadOnlyList<ImageRun<T>> Images) : IDisposable
{
    /// <summary>The model's out-of-domain fit, null when it has none.</summary>
    public DomainFit? OutOfDomain { get; init; }

    /// <summary>The out-of-domain score of an image whose answer carries <paramref name="feature"/>; null without a fit or a feature.</summary>
    public OutOfDomainScore? Score(float[]? feature)
    {
        if (OutOfDomain is not { } fit || feature is null || feature.Length != fit.Gaussian.Dim) return null;
        return fit.Score(feature);
    }

    public void Dispose()
    {
        foreach (var image in Images) image.Image.Dispose();
    }
}

/// <summary>One uploaded image, the resize and crop it got (null for a full resize) and the model's result for it.</summary>
public sealed record ImageRun<T>(UploadedImage Image, EvalTransformPlan? Plan, T Result);
