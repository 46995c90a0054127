using System.Diagnostics;
using static TorchSharp.torch;

namespace BeitV2.Bench;

/// <summary>A TorchSharp model's forward on one fixed random batch, in inference mode (the torch serving path).</summary>
public sealed class TorchSharpForward(int batch, int size, Func<Tensor, Tensor> forward) : ForwardEngine
{
    private readonly Tensor input = randn(batch, 3, size, size);

    public override string Key => EngineKeys.TorchSharp;

    public override double RunOnceMs()
    {
        using var _ = inference_mode();
        var start = Stopwatch.GetTimestamp();
        using (NewDisposeScope()) forward(input);
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    public override void Dispose()
    {
        input.Dispose();
        base.Dispose();
    }
}
