namespace BeitV2.Ml.Serving;

/// <summary>Where batches are queued (the batching worker); typed per operation.</summary>
public interface IOperationQueue
{
    /// <summary>Queues one image's pixels for <paramref name="operation"/>; null when the queue no longer accepts work.</summary>
    Task<TResult>? TryEnqueue<TResult>(ServedOperation<TResult> operation, float[] pixels, bool pooled = false);
}

/// <summary>An operation with the type of its per-image result; see <see cref="ServedOperations"/>.</summary>
public abstract class ServedOperation(Operation operation)
{
    public Operation Operation { get; } = operation;

    /// <summary>Queues one image without caring about the result's type (warm-up); null as for <see cref="IOperationQueue.TryEnqueue{TResult}"/>.</summary>
    public abstract Task? TryEnqueueOn(IOperationQueue queue, float[] pixels);

    public override string ToString() => Operation.Name();
}

/// <summary>An operation whose result per image is a <typeparamref name="TResult"/>.</summary>
public sealed class ServedOperation<TResult>(Operation operation, Func<ServedModel, ImageBatch, TResult[]> run) : ServedOperation(operation)
{
    /// <summary>Runs the operation on a batch (B, 3, S, S); one result per image, in batch order.</summary>
    public TResult[] Run(ServedModel model, ImageBatch batch) => run(model, batch);

    public override Task? TryEnqueueOn(IOperationQueue queue, float[] pixels) => queue.TryEnqueue(this, pixels);
}

/// <summary>The four operations, one instance each (batches group images by these).</summary>
public static class ServedOperations
{
    public static ServedOperation<TokensResult> Tokens { get; } = new(Operation.Tokens, (m, b) => m.Tokens(b));
    public static ServedOperation<FeaturesResult> Features { get; } = new(Operation.Features, (m, b) => m.Features(b));
    public static ServedOperation<ClassProbabilities> Classify { get; } = new(Operation.Classify, (m, b) => m.Classify(b));
    public static ServedOperation<ClassMap> Segment { get; } = new(Operation.Segment, (m, b) => m.Segment(b));

    /// <summary>The instance of <paramref name="operation"/>.</summary>
    public static ServedOperation Of(Operation operation) => operation switch
    {
        Operation.Tokens => Tokens,
        Operation.Features => Features,
        Operation.Classify => Classify,
        Operation.Segment => Segment,
        _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
    };
}
