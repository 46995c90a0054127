using System.Diagnostics;
using System.Threading.Channels;
using BeitV2.Ml.Devices;
using BeitV2.Ml.Serving;
using BeitV2.Web.Configuration;

namespace BeitV2.Web.Inference;

/// <summary>
/// Dynamic batching for one served model: images of concurrent requests that ask for the same
/// operation are merged into one forward pass of up to <c>MaxBatch</c> images, waiting at most
/// <c>MaxWaitMs</c> after the first one for images not seen yet, and up to <c>MaxGatherMs</c> while
/// requests for the model are still being decoded (<see cref="ArrivingRequests"/>). Model work runs on this worker's own thread, so request
/// threads never block on the model and engine state (tensors, bound buffers) never crosses threads.
/// </summary>
/// <remarks>
/// Each image's pixels are copied once into the worker's <see cref="ImageBatch"/> (allocated once for <c>MaxBatch</c>
/// images), which the engine reads (see <see cref="ServedModel"/>). Each batch holds the device's <see cref="DeviceGate"/>
/// (on a GPU shared with a training job the batch runs between two training steps; on the CPU the gate is open).
/// Results are copied to the CPU inside the batch.
/// </remarks>
public sealed class BatchingWorker : IOperationQueue, IDisposable
{
    /// <summary>One queued image; a batch holds images of one operation, so their results have one type.</summary>
    private abstract class Pending(Operation operation, float[] pixels, bool pooled, long enqueuedTicks)
    {
        public Operation Operation { get; } = operation;
        public float[] Pixels { get; } = pixels;
        public bool Pooled { get; } = pooled;
        public long EnqueuedTicks { get; } = enqueuedTicks;

        /// <summary>Runs the operation on the batch; the returned action hands each image its result.</summary>
        public abstract Action Run(ServedModel model, ImageBatch input, IReadOnlyList<Pending> batch);
        public abstract void Fail(Exception e);
    }

    private sealed class Pending<TResult>(ServedOperation<TResult> operation, float[] pixels, bool pooled, long enqueuedTicks)
        : Pending(operation.Operation, pixels, pooled, enqueuedTicks)
    {
        public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override Action Run(ServedModel model, ImageBatch input, IReadOnlyList<Pending> batch)
        {
            var results = operation.Run(model, input);
            return () =>
            {
                for (var i = 0; i < batch.Count; i++)
                    if (batch[i] is Pending<TResult> p) p.Completion.TrySetResult(results[i]);
                    else batch[i].Fail(new InvalidOperationException($"A {batch[i].Operation.Name()} image was batched with {Operation.Name()} ones."));
            };
        }

        public override void Fail(Exception e) => Completion.TrySetException(e);
    }

    private readonly string id;
    private readonly ServedModel model;
    private readonly InferenceOptions options;
    private readonly ILogger logger;
    private readonly Channel<Pending> queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread thread;
    private readonly List<Pending> carry = new();
    private readonly DeviceGate? gate;
    private readonly ImageBatch input;

    /// <summary>Sizes of the batches run so far (most recent last, bounded); for tests and diagnostics.</summary>
    public IReadOnlyList<int> RecentBatchSizes { get { lock (recent) return recent.ToList(); } }
    private readonly Queue<int> recent = new();

    private readonly Func<int> incoming;

    /// <param name="id">the model's registry id (thread name, logs).</param>
    /// <param name="incoming">Requests for this model accepted but not queued yet (<see cref="ArrivingRequests"/>); none when null.</param>
    /// <param name="serving">how the model was loaded (engine, precision, device), for the API and metrics.</param>
    public BatchingWorker(string id, ServedModel model, InferenceOptions options, ILogger logger, DeviceGate? gate = null,
        Func<int>? incoming = null, ServedModelInfo? serving = null)
    {
        this.incoming = incoming ?? (() => 0);
        this.id = id;
        this.model = model;
        Input = new ModelInput(model.Preprocessing);
        this.options = options;
        this.logger = logger;
        this.gate = gate;
        input = new ImageBatch(Math.Max(1, options.MaxBatch), Input.Size);
        Serving = serving ?? new ServedModelInfo(id, model.Engine.Name(), "fp32", "cpu", null, 0, null);
        thread = new Thread(Run) { IsBackground = true, Name = $"inference:{id}" };
        thread.Start();
    }

    public ServedModel Model => model;

    /// <summary>How the model was loaded: engine, precision, device, and why TorchSharp serves it when ONNX was asked for.</summary>
    public ServedModelInfo Serving { get; }

    /// <summary>How an image becomes this model's input (its manifest's preprocessing).</summary>
    public ModelInput Input { get; }

    /// <summary>The package's out-of-domain fit, loaded with it; null when it has none (each image then gets no score).</summary>
    public BeitV2.Ml.Domain.DomainFit? OutOfDomain { get; init; }

    /// <summary>
    /// Queues one image (its first 3·S² floats, CHW); null when the worker was stopped (the model was unloaded) —
    /// get a fresh worker then. A <paramref name="pooled"/> array (from <see cref="ModelInput.Prepare"/>) goes back
    /// to <see cref="System.Buffers.ArrayPool{T}.Shared"/> once its pixels are in the batch tensor.
    /// </summary>
    public Task<TResult>? TryEnqueue<TResult>(ServedOperation<TResult> operation, float[] pixels, bool pooled = false)
    {
        var pending = new Pending<TResult>(operation, pixels, pooled, Stopwatch.GetTimestamp());
        return queue.Writer.TryWrite(pending) ? pending.Completion.Task : null;
    }

    private void Run()
    {
        try
        {
            while (true)
            {
                var batch = NextBatch();
                if (batch is null) break;
                Execute(batch);
            }
        }
        finally
        {
            model.Dispose();
        }
    }

    /// <summary>The first waiting item and every other item of its operation arriving within the wait window.</summary>
    private List<Pending>? NextBatch()
    {
        Pending first;
        if (carry.Count > 0)
        {
            first = carry[0];
            carry.RemoveAt(0);
        }
        else if (!TryReadBlocking(Timeout.InfiniteTimeSpan, out first!))
        {
            return null;
        }
        var batch = new List<Pending> { first };
        for (var i = 0; i < carry.Count && batch.Count < options.MaxBatch;)
        {
            if (carry[i].Operation == first.Operation) { batch.Add(carry[i]); carry.RemoveAt(i); }
            else i++;
        }
        long Ticks(int ms) => (long)(ms * Stopwatch.Frequency / 1000.0);
        var waitDeadline = first.EnqueuedTicks + Ticks(options.MaxWaitMs);
        var gatherDeadline = first.EnqueuedTicks + Ticks(Math.Max(options.MaxWaitMs, options.MaxGatherMs));
        while (batch.Count < options.MaxBatch)
        {
            if (!queue.Reader.TryRead(out var next))
            {
                // Requests that are being decoded will come: wait for them up to MaxGatherMs, looking again every
                // millisecond (one may fail and never arrive). Otherwise only MaxWaitMs for ones not seen yet.
                var now = Stopwatch.GetTimestamp();
                var gathering = now < gatherDeadline && incoming() > 0;
                var remaining = Stopwatch.GetElapsedTime(now, gathering ? gatherDeadline : waitDeadline);
                if (remaining <= TimeSpan.Zero) break;
                if (!TryReadBlocking(gathering ? TimeSpan.FromTicks(Math.Min(remaining.Ticks, TimeSpan.TicksPerMillisecond)) : remaining, out next!))
                {
                    if (queue.Reader.Completion.IsCompleted) break;
                    continue;
                }
            }
            if (next.Operation == first.Operation) batch.Add(next);
            else carry.Add(next);
        }
        return batch;
    }

    private bool TryReadBlocking(TimeSpan timeout, out Pending item)
    {
        if (queue.Reader.TryRead(out item!)) return true;
        using var cts = timeout == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(timeout);
        try
        {
            if (!queue.Reader.WaitToReadAsync(cts.Token).AsTask().GetAwaiter().GetResult()) return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        return queue.Reader.TryRead(out item!);
    }

    private void Execute(List<Pending> batch)
    {
        var op = batch[0].Operation.Name();
        var start = Stopwatch.GetTimestamp();
        foreach (var p in batch) InferenceMetrics.QueueSeconds.WithLabels(op).Observe(Stopwatch.GetElapsedTime(p.EnqueuedTicks, start).TotalSeconds);
        InferenceMetrics.BatchSize.WithLabels(op).Observe(batch.Count);
        lock (recent)
        {
            recent.Enqueue(batch.Count);
            while (recent.Count > 1000) recent.Dequeue();
        }
        try
        {
            Action complete;
            long computeStart;
            using (gate?.Enter())
            {
                computeStart = Stopwatch.GetTimestamp();
                if (gate is { Enabled: true })
                    InferenceMetrics.DeviceWaitSeconds.WithLabels(op).Observe(Stopwatch.GetElapsedTime(start, computeStart).TotalSeconds);
                // Each image's pixels go straight into the worker's batch buffer, which the engine reads.
                input.SetCount(batch.Count);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Pixels.AsSpan(0, input.ImageLength).CopyTo(input.Image(i));
                    if (batch[i].Pooled) System.Buffers.ArrayPool<float>.Shared.Return(batch[i].Pixels);
                }
                complete = batch[0].Run(model, input, batch);
            }
            InferenceMetrics.ComputeSeconds.WithLabels(op).Observe(Stopwatch.GetElapsedTime(computeStart).TotalSeconds);
            complete();
        }
        catch (Exception e)
        {
            InferenceMetrics.Failures.WithLabels(op).Inc();
            logger.LogError(e, "Inference batch of {Count} failed on {Model}/{Operation}", batch.Count, id, op);
            foreach (var p in batch) p.Fail(e);
        }
    }

    /// <summary>Stops accepting work; queued items are still processed, then the model is disposed.</summary>
    public void Dispose() => queue.Writer.TryComplete();
}
