using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Serving;
using BeitV2.Web.Inference;
using BeitV2.Web.Registry;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Collections;

/// <summary>The vectors (<c>n × dim</c>) and token maps (<c>n × rows·cols</c>, empty without a tokenizer) of some images.</summary>
public sealed record EmbeddedImages(float[] Vectors, ushort[] Tokens);

/// <summary>
/// Embeds (and tokenizes) images through the served models, exactly as the inference routes do: each image goes through
/// the model's <see cref="ModelInput"/> and the model's batching worker in <see cref="ModelHost"/> (the configured engine,
/// device and precision). The index job, uploads and search queries all come here, so an indexed image and the same image
/// as a query get the same vector.
/// </summary>
public sealed class CollectionEmbedder(ModelHost host, ModelRegistry registry)
{
    /// <summary>The vector of one served answer, by the collection's pooling.</summary>
    public static float[] Pooled(FeaturesResult features, string pooling) => pooling == "mean" ? features.Mean : features.Cls;

    /// <summary>How the collection's tokenizer prepares an image (for patch crops).</summary>
    public async Task<ModelPreprocessing> TokenizerInputAsync(string tokenizer) => (await host.GetAsync(registry.Get(tokenizer))).Input.Preprocessing;

    /// <summary>Vectors and token maps of <paramref name="images"/> (not disposed here), in order.</summary>
    /// <exception cref="Errors.NotFoundException">a model of the collection was deleted.</exception>
    public async Task<EmbeddedImages> EmbedAsync(CollectionRecord collection, IReadOnlyList<Image<Rgb24>> images)
    {
        var features = RunAsync(collection.EmbeddingModel, ServedOperations.Features, images);
        var tokens = collection.Tokenizer is { } t ? RunAsync(t, ServedOperations.Tokens, images) : null;
        var vectors = new float[images.Count * collection.Dim];
        var answers = await features;
        for (var i = 0; i < answers.Length; i++)
        {
            var v = Pooled(answers[i], collection.Pooling);
            if (v.Length != collection.Dim)
                throw new InvalidOperationException($"Model '{collection.EmbeddingModel}' gave a vector of {v.Length} values; the collection holds vectors of {collection.Dim}.");
            v.CopyTo(vectors, i * collection.Dim);
        }
        var perItem = collection.Rows * collection.Cols;
        var maps = new ushort[images.Count * perItem];
        if (tokens is not null)
        {
            var ids = await tokens;
            for (var i = 0; i < ids.Length; i++)
            {
                if (ids[i].Ids.Length != perItem)
                    throw new InvalidOperationException($"Tokenizer '{collection.Tokenizer}' gave {ids[i].Ids.Length} tokens; the collection holds {perItem} per image.");
                for (var p = 0; p < perItem; p++) maps[i * perItem + p] = checked((ushort)ids[i].Ids[p]);
            }
        }
        return new EmbeddedImages(vectors, maps);
    }

    private async Task<T[]> RunAsync<T>(string modelId, ServedOperation<T> operation, IReadOnlyList<Image<Rgb24>> images)
    {
        var info = registry.Get(modelId);
        var worker = await host.GetAsync(info);
        var tasks = new List<Task<T>>(images.Count);
        foreach (var image in images)
        {
            var pixels = worker.Input.Prepare(image, out _);
            var task = worker.TryEnqueue(operation, pixels, pooled: true);
            if (task is null)
            {
                // Unloaded between lookup and enqueue (LRU eviction or delete): load again once, as the inference routes do.
                System.Buffers.ArrayPool<float>.Shared.Return(pixels);
                worker = await host.GetAsync(registry.Get(modelId));
                task = worker.TryEnqueue(operation, worker.Input.Prepare(image, out _), pooled: true)
                       ?? throw new Errors.ModelNotReadyException($"Model '{modelId}' is being unloaded; retry.");
            }
            tasks.Add(task);
        }
        return await Task.WhenAll(tasks);
    }
}
