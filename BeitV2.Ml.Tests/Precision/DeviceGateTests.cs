using System.Collections.Concurrent;
using BeitV2.Ml.Devices;

namespace BeitV2.Ml.Tests.Precision;

/// <summary>The per-device fair lock that lets inference batches run between training steps (its logic, on plain threads).</summary>
public class DeviceGateTests
{
    [Fact]
    public void Disabled_NeverBlocks()
    {
        var gate = new DeviceGate("cpu", enabled: false);
        using var a = gate.Enter();
        using var b = gate.Enter();   // a second holder at once: nothing is serialised on the CPU
        Assert.Equal(0, gate.Queued);
    }

    [Fact]
    public void Enabled_IsMutuallyExclusive()
    {
        var gate = new DeviceGate("cuda:0", enabled: true);
        var inside = 0;
        var maxInside = 0;
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (var i = 0; i < 200; i++)
            {
                using (gate.Enter())
                {
                    var n = Interlocked.Increment(ref inside);
                    InterlockedMax(ref maxInside, n);
                    Thread.SpinWait(200);
                    Interlocked.Decrement(ref inside);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(1, maxInside);
        Assert.Equal(800, gate.Statistics.Entries);
        Assert.Equal(0, gate.Queued);
    }

    [Fact]
    public void Waiters_AreServedInArrivalOrder()
    {
        var gate = new DeviceGate("cuda:0", enabled: true);
        var order = new ConcurrentQueue<int>();
        var holder = gate.Enter();
        var threads = new List<Thread>();
        for (var i = 0; i < 5; i++)
        {
            var id = i;
            var t = new Thread(() => { using (gate.Enter()) order.Enqueue(id); });
            t.Start();
            threads.Add(t);
            // Wait until this thread is queued before starting the next one, so arrival order is known.
            Assert.True(SpinWait.SpinUntil(() => gate.Queued == id + 2, TimeSpan.FromSeconds(60)), $"thread {id} did not queue");
        }
        holder.Dispose();
        threads.ForEach(t => t.Join());
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, order.ToArray());
    }

    /// <summary>
    /// A training loop and an inference worker that both want the device all the time (each finishes
    /// its turn only once the other is queued): they alternate, so inference waits at most one step
    /// and a busy inference load cannot starve training.
    /// </summary>
    [Fact]
    public void TrainingAndInference_Alternate()
    {
        var gate = new DeviceGate("cuda:0", enabled: true);
        var log = new ConcurrentQueue<char>();
        var inferenceDone = false;
        void Turn(char who)
        {
            using (gate.Enter())
            {
                log.Enqueue(who);
                SpinWait.SpinUntil(() => gate.Queued >= 2 || Volatile.Read(ref inferenceDone), TimeSpan.FromSeconds(60)); // an event, not a pace: generous
            }
        }
        var trainer = new Thread(() => { while (!Volatile.Read(ref inferenceDone)) Turn('T'); });
        var inference = new Thread(() =>
        {
            for (var i = 0; i < 20; i++) Turn('I');
            Volatile.Write(ref inferenceDone, true);
        });
        trainer.Start();
        Assert.True(SpinWait.SpinUntil(() => !log.IsEmpty, TimeSpan.FromSeconds(60)), "the trainer thread never took a turn");
        inference.Start();
        inference.Join();
        trainer.Join();
        var sequence = new string(log.ToArray());
        var contended = sequence[sequence.IndexOf('I')..(sequence.LastIndexOf('I') + 1)];
        Assert.Equal(string.Concat(Enumerable.Repeat("IT", 19)) + "I", contended);
    }

    [Fact]
    public void DisposingTwice_ReleasesOnce()
    {
        var gate = new DeviceGate("cuda:0", enabled: true);
        var turn = gate.Enter();
        turn.Dispose();
        turn.Dispose();
        using (gate.Enter()) Assert.Equal(1, gate.Queued);
        Assert.Equal(0, gate.Queued);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }
}
