using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Inference;

/// <summary>Bounds the inference requests in flight; beyond the bound a request is refused with 429 at once.</summary>
public sealed class InFlightLimiter(IOptions<InferenceOptions> options)
{
    private int current;

    public int Current => Volatile.Read(ref current);

    public IDisposable Enter()
    {
        var max = Math.Max(1, options.Value.MaxInFlight);
        if (Interlocked.Increment(ref current) > max)
        {
            Interlocked.Decrement(ref current);
            InferenceMetrics.Requests.WithLabels("any", "rejected").Inc();
            throw ApiProblemException.TooManyRequests($"More than {max} inference requests are in flight (Inference:MaxInFlight); retry shortly.");
        }
        InferenceMetrics.InFlight.Inc();
        return new Slot(this);
    }

    private sealed class Slot(InFlightLimiter owner) : IDisposable
    {
        private int disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0) return;
            Interlocked.Decrement(ref owner.current);
            InferenceMetrics.InFlight.Dec();
        }
    }
}
