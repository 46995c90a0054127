using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Inference;

/// <summary>
/// The process-wide budget of decoded pixel memory (<c>Limits:MaxDecodeBytes</c>): a request takes the bytes
/// of one image before decoding it and gives them back once the image is shrunk to the model's input, so
/// concurrent requests queue for memory instead of multiplying it. Waiters are served first come, first
/// served (a large image is not starved by a stream of small ones); a request that waits longer than
/// <c>Limits:DecodeQueueTimeoutMs</c> gets 429.
/// </summary>
/// <remarks>Separate from the request-concurrency limit: that one counts requests, this one counts bytes.</remarks>
public sealed class DecodeBudget(IOptions<LimitsOptions> options)
{
    private readonly object gate = new();
    private readonly LinkedList<Waiter> queue = new();
    private long available = options.Value.MaxDecodeBytes;

    /// <summary>The whole budget in bytes.</summary>
    public long Capacity { get; } = options.Value.MaxDecodeBytes;

    /// <summary>Bytes not taken right now.</summary>
    public long Available { get { lock (gate) return available; } }

    /// <summary>Requests waiting for budget right now (tests wait on this instead of on time).</summary>
    public int Waiting { get { lock (gate) return queue.Count; } }

    /// <summary>
    /// Takes <paramref name="bytes"/> (capped at the capacity, so one image that alone fills the budget still
    /// runs, on its own) and returns the lease that gives them back. Throws a 429 problem after the queue timeout.
    /// </summary>
    public async ValueTask<IDisposable> AcquireAsync(long bytes, CancellationToken ct)
    {
        bytes = Math.Clamp(bytes, 0, Capacity);
        Waiter waiter;
        lock (gate)
        {
            if (queue.Count == 0 && available >= bytes)
            {
                available -= bytes;
                return new Lease(this, bytes);
            }
            waiter = new Waiter(bytes);
            waiter.Node = queue.AddLast(waiter);
        }

        var timeout = options.Value.DecodeQueueTimeoutMs;
        using var timer = new CancellationTokenSource(TimeSpan.FromMilliseconds(Math.Max(timeout, 0)));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
        await using (linked.Token.Register(() => Abandon(waiter)))
        {
            if (await waiter.Granted.Task) return new Lease(this, bytes);
        }
        ct.ThrowIfCancellationRequested();
        throw new CapacityException(
            $"The server is decoding other images and its decode memory (Limits:MaxDecodeBytes = {Capacity} bytes) stayed full for " +
            $"{timeout} ms (Limits:DecodeQueueTimeoutMs); retry later.");
    }

    private void Abandon(Waiter waiter)
    {
        lock (gate)
        {
            if (waiter.Node?.List is null) return;      // already granted
            queue.Remove(waiter.Node);
            GrantWaiters();                             // a big waiter at the head may have blocked smaller ones
        }
        waiter.Granted.TrySetResult(false);
    }

    private void Release(long bytes)
    {
        lock (gate)
        {
            available += bytes;
            GrantWaiters();
        }
    }

    // Under the lock: grant in order while the head fits.
    private void GrantWaiters()
    {
        while (queue.First is { } head && available >= head.Value.Bytes)
        {
            available -= head.Value.Bytes;
            queue.RemoveFirst();
            head.Value.Granted.TrySetResult(true);
        }
    }

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;
        public LinkedListNode<Waiter>? Node { get; set; }
        public TaskCompletionSource<bool> Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Lease(DecodeBudget budget, long bytes) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0) budget.Release(bytes);
        }
    }
}
