using System.Diagnostics;
using BeitV2.Ml;
using BeitV2.Ml.Models;
using BeitV2.Ml.Precision;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>Torch-only forward time of the classifier (what the server's batch worker runs), without HTTP, decoding or resizing.</summary>
public static class TorchForward
{
    private const int Warmup = 2;

    public sealed record Timing(int Batch, int Runs, LatencyStats PerBatchMs)
    {
        public double MsPerImage => PerBatchMs.Mean / Batch;
        public double ImagesPerSecond => 1000.0 * Batch / PerBatchMs.Mean;
    }

    /// <summary>
    /// Two untimed runs, then <paramref name="runs"/> timed runs at <paramref name="batch"/> images, bounded by
    /// <paramref name="limit"/>, on the model's device (the input is copied there inside each run, the
    /// probabilities back to the CPU, as the server's batch worker does) in <paramref name="precision"/>.
    /// </summary>
    public static Timing Measure(BeitVisionTransformer model, int batch, int runs, TimeSpan limit, ComputePrecision precision = ComputePrecision.Fp32)
    {
        var size = model.Config.ImgSize;
        var device = model.parameters().First().device;
        var times = new List<double>();
        var sw = Stopwatch.StartNew();
        using (inference_mode())
        using (Autocast.Enable(precision))
        using (var input = randn(batch, 3, size, size))
        {
            for (var i = 0; i < runs + Warmup && sw.Elapsed < limit; i++)
            {
                var start = Stopwatch.GetTimestamp();
                using (NewDisposeScope())
                {
                    // The same steps as ServedVit.Execute("classify"): features, head, softmax, rows to the CPU.
                    using var output = model.ForwardFeatures(input.to(device));
                    var probs = model.ForwardHead(output.Features).softmax(-1).cpu();   // synchronises the device
                    for (var b = 0; b < batch; b++) _ = probs[b].contiguous().data<float>().ToArray();
                }
                TorchRuntime.Synchronize(device);
                if (i >= Warmup) times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }
        return new Timing(batch, times.Count, LatencyStats.Of(times));
    }
}
