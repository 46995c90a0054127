using System.Diagnostics;
using BeitV2.Web.Configuration;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Inference;

/// <summary>
/// Loads the default tokenizer, classifier and segmenter at start-up and runs one full batch of blank images
/// through each, so the first real request pays neither the model load nor libtorch's first-call costs
/// (allocator growth, kernel selection). Runs in the background: the server answers meanwhile, and a model
/// that fails to warm up is only logged (the request that needs it reports the error). <c>Inference:WarmUp</c>.
/// </summary>
public sealed class ModelWarmup(ModelRegistry registry, ModelHost host, IOptions<InferenceOptions> options, ILogger<ModelWarmup> logger)
    : BackgroundService
{
    private static readonly string[] Kinds = [ApiModelKinds.Classifier, ApiModelKinds.Tokenizer, ApiModelKinds.Segmenter];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.WarmUp) return;
        await Task.Yield(); // let the host finish starting
        var ids = Kinds.Select(registry.DefaultId).OfType<string>().Distinct().Take(options.Value.MaxLoadedModels);
        foreach (var id in ids)
        {
            if (stoppingToken.IsCancellationRequested) return;
            var clock = Stopwatch.StartNew();
            try
            {
                var worker = await host.GetAsync(registry.Get(id));
                var operation = worker.Model.Operations.First();
                var blank = new float[worker.Input.Length];
                var batch = Enumerable.Range(0, Math.Max(1, options.Value.MaxBatch)).Select(_ => operation.TryEnqueueOn(worker, blank)).OfType<Task>().ToList();
                await Task.WhenAll(batch).WaitAsync(stoppingToken);
                logger.LogInformation("Warmed up {Id} ({Operation}, batch of {Batch}) in {Ms:F0} ms", id, operation, batch.Count, clock.Elapsed.TotalMilliseconds);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Warm-up of model {Id} failed; requests will load it on demand", id);
            }
        }
    }
}
