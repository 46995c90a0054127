using System.Collections.Concurrent;

namespace BeitV2.Web.Inference;

/// <summary>
/// Requests per model that have been accepted but whose images are not queued yet (the body is being
/// read, decoded and resized). A batching worker that sees some coming waits for them, up to
/// <c>Inference:MaxGatherMs</c>, instead of guessing with a fixed delay: a lone request never waits, and
/// concurrent clients end up in one batch even when preprocessing takes longer than <c>MaxWaitMs</c>.
/// </summary>
public sealed class ArrivingRequests
{
    private readonly ConcurrentDictionary<string, StrongBox> counts = new(StringComparer.Ordinal);

    /// <summary>Counts one request for <paramref name="modelId"/> until the returned handle is disposed (idempotent).</summary>
    public Arrival Enter(string modelId)
    {
        var box = counts.GetOrAdd(modelId, _ => new StrongBox());
        Interlocked.Increment(ref box.Value);
        return new Arrival(box);
    }

    /// <summary>Requests for <paramref name="modelId"/> still being prepared.</summary>
    public int Count(string modelId) => counts.TryGetValue(modelId, out var box) ? Volatile.Read(ref box.Value) : 0;

    public sealed class StrongBox
    {
        public int Value;
    }

    /// <summary>One counted request; dispose once its images are queued (or it failed).</summary>
    public sealed class Arrival(StrongBox box) : IDisposable
    {
        private int done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 0) Interlocked.Decrement(ref box.Value);
        }
    }
}
