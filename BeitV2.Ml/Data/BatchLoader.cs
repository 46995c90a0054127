using System.Runtime.ExceptionServices;
using TorchSharp;

namespace BeitV2.Ml.Data;

/// <summary>
/// A minimal data loader: shuffles a dataset per epoch, prepares each batch's samples on a few
/// threads (<see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>) and stacks them into
/// CPU tensors (<see cref="TrainingBatch"/>).
/// </summary>
/// <remarks>
/// <para>Determinism: the epoch order is a function of (seed, epoch), and every sample is transformed
/// with its own <see cref="Random"/> seeded from (seed, epoch, dataset index), the MIM mask with
/// another from the same triple. Batches are therefore byte-identical for the same seed and epoch
/// whatever the thread timing, the number of workers, prefetching or batch size.</para>
/// <para>Ownership: every yielded batch is a new set of tensors that the caller must dispose
/// (<c>foreach (var b in loader.Epoch(e)) using (b) { ... }</c>). Prefetching prepares only managed
/// arrays ahead, never tensors, so abandoning an enumeration leaks nothing; the pending background
/// work is awaited when the enumerator is disposed.</para>
/// </remarks>
public sealed class BatchLoader
{
    private const long AugmentationStream = 1;
    private const long MaskingStream = 2;

    /// <summary>Creates a loader.</summary>
    public BatchLoader(IImageDataset dataset, ISampleTransform transform, BatchLoaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(transform);
        Dataset = dataset;
        Transform = transform;
        Options = (options ?? new BatchLoaderOptions()).Validate();
    }

    /// <summary>The dataset.</summary>
    public IImageDataset Dataset { get; }

    /// <summary>The per-sample transform.</summary>
    public ISampleTransform Transform { get; }

    /// <summary>The options.</summary>
    public BatchLoaderOptions Options { get; }

    /// <summary>Items in one epoch: <see cref="BatchLoaderOptions.EpochSize"/> (at most the dataset's size) or the whole dataset.</summary>
    public int EpochLength => Options.EpochSize is { } n ? Math.Min(n, Dataset.Count) : Dataset.Count;

    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch => Options.DropLast
        ? EpochLength / Options.BatchSize
        : (EpochLength + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>
    /// The dataset indices of one epoch in the order they are served: all of them, or with
    /// <see cref="BatchLoaderOptions.EpochSize"/> n the window (e·n + i) mod count, i &lt; n; shuffled from (seed, epoch).
    /// </summary>
    public int[] EpochOrder(int epoch)
    {
        int count = Dataset.Count;
        var order = new int[EpochLength];
        long start = Options.EpochSize is null || count == 0 ? 0 : ((long)epoch * order.Length % count + count) % count;
        for (int i = 0; i < order.Length; i++) order[i] = (int)((start + i) % count);
        if (!Options.Shuffle) return order;
        var random = SeedMixer.Create(Options.Seed, epoch, -1);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>The batches of an epoch, created lazily; the caller disposes each.</summary>
    public IEnumerable<TrainingBatch> Epoch(int epoch)
    {
        var order = EpochOrder(epoch);
        int batches = BatchesPerEpoch;
        Task<PreparedBatch>? next = null;
        try
        {
            for (int b = 0; b < batches; b++)
            {
                var current = next is null ? Prepare(order, epoch, b) : Await(next);
                next = null;
                if (Options.Prefetch && b + 1 < batches)
                {
                    int following = b + 1;
                    next = Task.Run(() => Prepare(order, epoch, following));
                }
                yield return current.ToTensors();
            }
        }
        finally
        {
            // Don't leave work running after the caller stops; its result (managed arrays) is dropped.
            if (next is not null)
                try { next.Wait(); } catch (AggregateException) { }
        }
    }

    /// <summary>One batch of an epoch (recomputes the epoch order; use <see cref="Epoch"/> for a pass). The caller disposes it.</summary>
    public TrainingBatch LoadBatch(int epoch, int batchIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(batchIndex, BatchesPerEpoch);
        return Prepare(EpochOrder(epoch), epoch, batchIndex).ToTensors();
    }

    /// <summary>Transforms one sample exactly as a batch would (same random streams).</summary>
    public PreparedSample PrepareSample(int epoch, int datasetIndex) =>
        Transform.Apply(Dataset.Get(datasetIndex), SeedMixer.Create(Options.Seed, epoch, datasetIndex, AugmentationStream));

    private PreparedBatch Prepare(int[] order, int epoch, int batchIndex)
    {
        int start = batchIndex * Options.BatchSize;
        int count = Math.Min(Options.BatchSize, order.Length - start);
        var indices = order.AsSpan(start, count).ToArray();
        var samples = new PreparedSample[count];
        var masks = Options.Masking is null ? null : new bool[count][];
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Options.Workers }, i =>
            {
                samples[i] = PrepareSample(epoch, indices[i]);
                if (masks is not null)
                    masks[i] = Options.Masking!(SeedMixer.Create(Options.Seed, epoch, indices[i], MaskingStream)).Generate();
            });
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
            throw;
        }
        return new PreparedBatch(this, epoch, batchIndex, indices, samples, masks);
    }

    private static PreparedBatch Await(Task<PreparedBatch> task)
    {
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (AggregateException ex) when (ex.InnerExceptions.Count == 1)
        {
            ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
            throw;
        }
    }

    // The managed form of a batch; turned into tensors only when it is handed out.
    private sealed class PreparedBatch(BatchLoader loader, int epoch, int batchIndex, int[] indices,
        PreparedSample[] samples, bool[][]? masks)
    {
        public TrainingBatch ToTensors()
        {
            var transform = loader.Transform;
            int n = samples.Length, s = transform.Size;
            int perImage = 3 * s * s;
            var images = new float[checked(n * perImage)];
            var labels = new long[n];
            int? s2 = transform.SecondSize;
            var second = s2 is { } side2 ? new float[checked(n * 3 * side2 * side2)] : null;
            var seg = transform.ProducesMask ? new long[checked(n * s * s)] : null;
            int patches = masks is { Length: > 0 } ? masks[0].Length : 0;
            var positions = masks is null ? null : new bool[checked(n * patches)];

            for (int i = 0; i < n; i++)
            {
                var sample = samples[i];
                Check(sample.Pixels.Length == perImage, $"{sample.Pixels.Length} pixel values, expected {perImage}");
                sample.Pixels.CopyTo(images, i * perImage);
                labels[i] = sample.Label;
                if (second is not null)
                {
                    int per = 3 * s2!.Value * s2.Value;
                    Check(sample.SecondPixels?.Length == per, $"no second view of {per} values");
                    sample.SecondPixels!.CopyTo(second, i * per);
                }
                if (seg is not null)
                {
                    Check(sample.Mask?.Length == s * s, $"no {s}x{s} mask");
                    var mask = sample.Mask!;
                    for (int k = 0; k < mask.Length; k++) seg[i * s * s + k] = mask[k];
                }
                if (positions is not null)
                {
                    Check(masks![i].Length == patches, $"a MIM mask of {masks[i].Length} cells, expected {patches}");
                    masks[i].CopyTo(positions, i * patches);
                }

                void Check(bool ok, string problem)
                {
                    if (!ok) throw new InvalidOperationException($"The transform returned {problem} for dataset item {indices[i]}.");
                }
            }

            var tensors = new List<torch.Tensor>();
            try
            {
                var imagesT = Track(torch.tensor(images, new long[] { n, 3, s, s }));
                var labelsT = Track(torch.tensor(labels, new long[] { n }));
                var secondT = second is null ? null : Track(torch.tensor(second, new long[] { n, 3, s2!.Value, s2.Value }));
                var segT = seg is null ? null : Track(torch.tensor(seg, new long[] { n, s, s }));
                var posT = positions is null ? null : Track(torch.tensor(positions, new long[] { n, patches }));
                return new TrainingBatch(epoch, batchIndex, indices, imagesT, labelsT, secondT, segT, posT);
            }
            catch
            {
                foreach (var t in tensors) t.Dispose();
                throw;
            }

            torch.Tensor Track(torch.Tensor t)
            {
                tensors.Add(t);
                return t;
            }
        }
    }
}
