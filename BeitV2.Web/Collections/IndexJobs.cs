using System.Diagnostics;
using System.Text.Json;
using BeitV2.Ml.Retrieval;
using BeitV2.Ml.Training;
using BeitV2.Web.Errors;
using BeitV2.Web.Jobs;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Collections;

/// <summary>
/// The <c>index</c> job: embeds the collection's dataset images in batches through the served models
/// (<see cref="CollectionEmbedder"/>), appends them, and commits the items done every <c>checkpointEverySteps</c> batches
/// and when cancelled (its checkpoint: a resume continues after them; a crash loses at most the batches since the last
/// commit, which are cut off and embedded again). At the end it builds the vector index and, with a tokenizer, the
/// inverted index of the token maps, and marks the collection ready.
/// </summary>
public sealed class IndexJobs(CollectionStore store, DatasetItems datasets, CollectionEmbedder embedder, ILogger<IndexJobs> logger) : IIndexJobs
{
    public const int DefaultBatchSize = 64, DefaultCheckpointEverySteps = 10;

    public IndexJobOutcome Run(JobRecord job, IProgress<TrainingProgress> progress, Action<string> log, CancellationToken ct)
    {
        var id = job.Collection ?? throw new InvalidOperationException($"Index job {job.Id} names no collection.");
        try
        {
            return RunAsync(job, id, progress, log, ct).GetAwaiter().GetResult();
        }
        catch (NotFoundException) when (store.Find(id) is null)
        {
            // The collection was deleted while its job ran (its delete cancels the job): nothing is left to fill.
            log($"collection {id} was deleted; the job stops");
            return new IndexJobOutcome(true, null);
        }
    }

    private async Task<IndexJobOutcome> RunAsync(JobRecord job, string id, IProgress<TrainingProgress> progress, Action<string> log, CancellationToken ct)
    {
        var s = JobSettings.Parse(job.Config);
        var batch = job.Config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty("batchSize", out _) ? s.BatchSize : DefaultBatchSize;
        var checkpointEvery = s.CheckpointEverySteps > 0 ? s.CheckpointEverySteps : DefaultCheckpointEverySteps;
        var collection = store.Get(id);
        var data = datasets.Open(collection.Dataset);
        var total = Math.Min(data.Count, s.MaxImages ?? int.MaxValue);
        if (collection.Tokenizer is { } tokenizer && collection.TokenizerInput is null)
        {
            var input = await embedder.TokenizerInputAsync(tokenizer);
            collection = store.Update(id, r => r with { TokenizerInput = input });
        }
        var state = store.State(id);
        if (collection.Status == CollectionStatus.Ready) return Done(id, state);
        var start = state.Items;
        long steps = (total + batch - 1) / batch, step = start / batch;
        log(start == 0
            ? $"indexing {total} images of {collection.Dataset} with {collection.EmbeddingModel}{(collection.Tokenizer is null ? "" : $" and {collection.Tokenizer}")}, {batch} per step"
            : $"resuming at item {start} of {total} (the checkpoint of the items done)");

        var pending = new List<(List<CollectionItem> Items, EmbeddedImages Embedded)>();
        var clock = Stopwatch.StartNew();
        var runImages = 0L;
        var committedSeconds = 0.0;
        void Commit()
        {
            if (pending.Count == 0) return;
            var seconds = clock.Elapsed.TotalSeconds - committedSeconds;
            var images = pending.Sum(p => p.Items.Count);
            state = store.Write(id, (current, files) =>
            {
                if (current.Items != files.Count || files.Count != state.Items)
                    throw new InvalidOperationException($"Collection {id} changed while its index job ran (it holds {current.Items} items, the job expected {state.Items}).");
                foreach (var (items, embedded) in pending) files.Append(items, embedded.Vectors, embedded.Tokens);
                return current with
                {
                    Items = files.Count, ItemsBytes = files.ItemsBytes,
                    JobSeconds = current.JobSeconds + seconds, JobImages = current.JobImages + images,
                };
            });
            committedSeconds += seconds;
            pending.Clear();
            progress.Report(Report(TrainingEvent.Checkpoint, step, steps, Rate(runImages, clock), null) with { CheckpointPath = store.CollectionDirectory(id) });
        }

        for (var first = start; first < total; first += batch)
        {
            if (ct.IsCancellationRequested)
            {
                Commit();
                log($"cancelled: {state.Items} of {total} items indexed are kept; resume continues after them");
                return new IndexJobOutcome(true, null);
            }
            var count = (int)Math.Min(batch, total - first);
            var items = new List<CollectionItem>(count);
            var images = new List<Image<Rgb24>>(count);
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var sample = data.Get((int)first + i);
                    items.Add(new CollectionItem { Label = sample.Label, Width = sample.Width, Height = sample.Height, DatasetIndex = (int)first + i });
                    images.Add(sample.Image.ToImage());
                }
                pending.Add((items, await embedder.EmbedAsync(collection, images)));
            }
            finally
            {
                foreach (var image in images) image.Dispose();
            }
            runImages += count;
            step++;
            if (step % checkpointEvery == 0) Commit();
            if (step % s.ReportEverySteps == 0 || step == steps)
            {
                var rate = Rate(runImages, clock);
                var eta = rate > 0 ? (total - first - count) / rate : (double?)null;
                progress.Report(Report(TrainingEvent.Step, step, steps, rate, eta) with
                {
                    Metrics = new Dictionary<string, double> { ["items"] = first + count, ["imagesPerSecond"] = rate },
                });
            }
        }
        Commit();
        if (ct.IsCancellationRequested)
        {
            log($"cancelled: all {total} items are embedded; resume builds the index");
            return new IndexJobOutcome(true, null);
        }
        state = BuildIndexes(collection, state, log);
        store.Update(id, r => r with { Status = CollectionStatus.Ready });
        return Done(id, state);
    }

    /// <summary>The vector index of every item and, with a tokenizer, the postings of their token maps: a new generation of each.</summary>
    private CollectionState BuildIndexes(CollectionRecord collection, CollectionState state, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        return store.Write(collection.Id, (current, files) =>
        {
            var generation = current.Generation + 1;
            using var index = VectorIndexes.Create(collection.Dim, current.Items, collection.VectorQuantization);
            const int Chunk = 4096;
            for (long first = 0; first < current.Items; first += Chunk)
            {
                var n = (int)Math.Min(Chunk, current.Items - first);
                var keys = new long[n];
                for (var i = 0; i < n; i++) keys[i] = first + i;
                index.Add(keys, store.Vectors(collection.Id, collection.Dim, first, n));
            }
            var indexFile = CollectionStore.GenerationFile("index", generation);
            index.Save(files.PathOf(indexFile));
            string? postingsFile = null;
            if (collection.Tokenizer is not null && collection.CodebookSize is { } size)
            {
                postingsFile = CollectionStore.GenerationFile("postings", generation);
                var tokens = store.Tokens(collection.Id, collection.Rows * collection.Cols, 0, current.Items);
                CodePostings.Write(files.PathOf(postingsFile), tokens, current.Items, collection.Rows, collection.Cols, size);
            }
            log($"index of {current.Items} items built in {clock.Elapsed.TotalSeconds:F1} s ({CollectionStore.KindOf(index)}, {index.Quantization.ToString().ToLowerInvariant()})" +
                (postingsFile is null ? "" : ", with the inverted index of the token maps"));
            return current with
            {
                IndexFile = indexFile, IndexItems = current.Items, IndexKind = CollectionStore.KindOf(index), IndexQuantization = index.Quantization.ToString().ToLowerInvariant(),
                PostingsFile = postingsFile ?? current.PostingsFile, PostingsItems = postingsFile is null ? current.PostingsItems : current.Items,
            };
        });
    }

    private IndexJobOutcome Done(string id, CollectionState state)
    {
        var rate = state.JobSeconds > 0 ? state.JobImages / state.JobSeconds : 0;
        logger.LogInformation("Collection {Id}: {Items} items, {Rate:F1} images/s", id, state.Items, rate);
        return new IndexJobOutcome(false, new IndexJobResult(id, state.Items, Math.Round(state.JobSeconds, 3), Math.Round(rate, 1)));
    }

    private static double Rate(long images, Stopwatch clock) => clock.Elapsed.TotalSeconds > 0 ? images / clock.Elapsed.TotalSeconds : 0;

    private static TrainingProgress Report(TrainingEvent e, long step, long steps, double rate, double? eta) =>
        new("index", e, 0, 1, step, steps, double.NaN, double.NaN, rate, eta, new Dictionary<string, double>(), []);
}
