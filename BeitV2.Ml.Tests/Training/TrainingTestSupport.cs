using BeitV2.Ml.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

/// <summary>
/// The trainer tests seed and read torch's process-wide generator (model init, k-means, dropout)
/// and compare runs bit for bit, so they must not share it with tests running in parallel.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TrainingCollection
{
    public const string Name = "Training (torch global generator)";
}

/// <summary>In-memory batches, a pure function of (seed, epoch, batch index), as exact resumption requires.</summary>
public sealed class SyntheticData : ITrainingData
{
    private readonly Func<Generator, int, TrainingBatch> make;
    private readonly int seed;

    public SyntheticData(int batchesPerEpoch, int seed, Func<Generator, int, TrainingBatch> make)
    {
        BatchesPerEpoch = batchesPerEpoch;
        this.seed = seed;
        this.make = make;
    }

    public int BatchesPerEpoch { get; }

    /// <summary>When set, the same batches every epoch (a fixed validation split).</summary>
    public bool SameEveryEpoch { get; init; }

    public IEnumerable<TrainingBatch> GetBatches(int epoch, int skip = 0)
    {
        for (var i = skip; i < BatchesPerEpoch; i++)
        {
            var e = SameEveryEpoch ? 0 : epoch;
            using var g = new Generator((ulong)(seed * 1_000_003L + e * 1009L + i));
            yield return make(g, i);
        }
    }

    /// <summary>
    /// Two classes: horizontal (0) or vertical (1) stripes with a random phase and period, plus noise;
    /// roughly zero-mean. Labels alternate so every batch has both classes.
    /// </summary>
    public static TrainingBatch Stripes(Generator g, int batch, int size, bool unitRange = false)
    {
        var images = new float[batch * 3 * size * size];
        var labels = new long[batch];
        using var phases = rand(batch, generator: g);
        using var noise = rand(batch * 3 * size * size, generator: g);
        var ph = phases.data<float>().ToArray();
        var nz = noise.data<float>().ToArray();
        for (var b = 0; b < batch; b++)
        {
            var cls = (b + (int)(ph[b] * 2)) % 2;
            labels[b] = cls;
            var period = 4 + (int)(ph[b] * 4);
            for (var c = 0; c < 3; c++)
                for (var y = 0; y < size; y++)
                    for (var x = 0; x < size; x++)
                    {
                        var t = cls == 0 ? y : x;
                        var v = Math.Sin(2 * Math.PI * (t / (double)period + ph[b]));
                        var idx = ((b * 3 + c) * size + y) * size + x;
                        var value = v + 0.3 * (nz[idx] - 0.5);
                        images[idx] = unitRange ? (float)Math.Clamp(0.5 + 0.4 * value, 0, 1) : (float)value;
                    }
        }
        return new TrainingBatch
        {
            Images = tensor(images, new long[] { batch, 3, size, size }),
            Labels = tensor(labels),
        };
    }
}

/// <summary>Synchronous progress sink (Progress&lt;T&gt; posts asynchronously).</summary>
public sealed class RecordingProgress : IProgress<TrainingProgress>
{
    private readonly Action<TrainingProgress>? onReport;

    public RecordingProgress(Action<TrainingProgress>? onReport = null) => this.onReport = onReport;

    public List<TrainingProgress> Reports { get; } = new();

    public IEnumerable<string> Log => Reports.SelectMany(r => r.Log);

    public void Report(TrainingProgress value)
    {
        Reports.Add(value);
        onReport?.Invoke(value);
    }
}

public static class ModelState
{
    /// <summary>Every parameter and buffer, cloned to the CPU.</summary>
    public static Dictionary<string, Tensor> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone());

    public static void AssertIdentical(Dictionary<string, Tensor> expected, nn.Module actual)
    {
        var sd = actual.state_dict();
        Assert.Equal(expected.Keys.Order(), sd.Keys.Order());
        foreach (var (k, v) in expected)
        {
            using var a = sd[k].detach().cpu();
            Assert.True(v.dtype == a.dtype && v.shape.SequenceEqual(a.shape), $"{k}: dtype/shape differ");
            using var eq = v.eq(a).all();
            Assert.True(eq.item<bool>(), $"{k} differs between the uninterrupted and the resumed run");
        }
    }

    public static bool AnyDifferent(Dictionary<string, Tensor> before, nn.Module after, Func<string, bool>? filter = null)
    {
        var sd = after.state_dict();
        foreach (var (k, v) in before)
        {
            if (filter is not null && !filter(k)) continue;
            using var a = sd[k].detach().cpu();
            using var eq = v.eq(a).all();
            if (!eq.item<bool>()) return true;
        }
        return false;
    }

    public static void Dispose(Dictionary<string, Tensor> snapshot)
    {
        foreach (var t in snapshot.Values) t.Dispose();
    }
}
