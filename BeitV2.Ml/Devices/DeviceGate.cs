namespace BeitV2.Ml.Devices;

/// <summary>
/// A fair (first come, first served) lock over one compute device, shared by the training worker
/// of that device and the inference workers of the models on it: a training step, an evaluation
/// batch or an inference batch holds it while it works on the device. With FIFO order an inference
/// batch waits for at most the step in progress, and a busy inference load cannot starve training
/// (each waits for at most one turn of the other).
/// </summary>
/// <remarks>
/// <para>Why on CUDA: TorchSharp 0.107 exposes no CUDA streams, so every thread already queues its
/// kernels on the device's default stream; the gate adds what the stream does not give — one
/// workload's activations in GPU memory at a time (a training step plus a concurrent inference batch
/// can exceed the memory either fits in alone) and bounded, predictable inference latency.</para>
/// <para>Why not on CPU (<see cref="Enabled"/> false, <see cref="Enter"/> is free): libtorch's CPU
/// thread pool is process-wide and the OS already interleaves both workloads, while a CPU training
/// step takes seconds to minutes (Base presets: ~13 s, Base segmentation ~75 s on 2 cores); holding
/// inference behind it would turn a 0.5 s answer into a minute.</para>
/// </remarks>
public sealed class DeviceGate
{
    private readonly object sync = new();
    private long nextTicket, nowServing;
    private long entries, waits;
    private double waitedSeconds;

    public DeviceGate(string device, bool enabled)
    {
        Device = device;
        Enabled = enabled;
    }

    /// <summary>The device name ("cuda:0", "cpu").</summary>
    public string Device { get; }

    /// <summary>False: <see cref="Enter"/> returns at once and nothing is serialised.</summary>
    public bool Enabled { get; }

    /// <summary>Holders plus waiters right now.</summary>
    public int Queued { get { lock (sync) return (int)(nextTicket - nowServing); } }

    /// <summary>Entries so far, entries that had to wait, and the total seconds waited.</summary>
    public (long Entries, long Waits, double WaitedSeconds) Statistics { get { lock (sync) return (entries, waits, waitedSeconds); } }

    /// <summary>Waits for this caller's turn (FIFO) and holds the device until the result is disposed.</summary>
    public IDisposable Enter()
    {
        if (!Enabled) return Released.Instance;
        lock (sync)
        {
            var ticket = nextTicket++;
            entries++;
            if (ticket != nowServing)
            {
                waits++;
                var start = System.Diagnostics.Stopwatch.GetTimestamp();
                while (ticket != nowServing) Monitor.Wait(sync);
                waitedSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
        }
        return new Holder(this);
    }

    private void Exit()
    {
        lock (sync)
        {
            nowServing++;
            Monitor.PulseAll(sync);
        }
    }

    private sealed class Holder(DeviceGate gate) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0) gate.Exit();
        }
    }

    private sealed class Released : IDisposable
    {
        public static readonly Released Instance = new();
        public void Dispose() { }
    }
}
