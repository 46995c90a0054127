namespace BeitV2.Web.Registry;

/// <summary>
/// One model import at a time: an import stages the upload, reads every tensor and builds the model, so
/// two at once double the peak memory and disk of the largest allowed file. A second import is refused
/// at once (429 with Retry-After) rather than queued, so a client never holds an upload open waiting.
/// </summary>
public sealed class ImportGate
{
    private readonly SemaphoreSlim gate = new(1, 1);

    /// <summary>
    /// Awaited while the gate is held, after the upload is staged and before it is read. Tests set it to
    /// hold an import at a known point (instead of racing a second request against the first's duration).
    /// </summary>
    public Func<CancellationToken, Task>? WhileHeld { get; set; }

    /// <summary>The gate if it is free (dispose to release), otherwise null.</summary>
    public IDisposable? TryEnter() => gate.Wait(0) ? new Held(gate) : null;

    private sealed class Held(SemaphoreSlim gate) : IDisposable
    {
        private int released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0) gate.Release();
        }
    }
}
