namespace BeitV2.Bench;

/// <summary>
/// One engine of <c>perf</c>'s engine comparison, ready to run one case (a model, an input size, a batch):
/// the model is loaded and the input made before the first call, so <see cref="RunOnceMs"/> times the
/// forward alone. The round-robin calls each engine of a case in turn, one forward per call.
/// </summary>
public abstract class ForwardEngine : IDisposable
{
    /// <summary>The engine's key in <see cref="EngineKeys"/>.</summary>
    public abstract string Key { get; }

    /// <summary>Runs the forward once on the prepared batch; milliseconds for the whole batch.</summary>
    public abstract double RunOnceMs();

    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>The engines of the comparison, in the order of the report's columns.</summary>
public static class EngineKeys
{
    /// <summary>ONNX Runtime running the PyTorch reference exported by <c>torch.onnx.export</c> (the naive anchor).</summary>
    public const string Anchor = "anchor";
    /// <summary>ONNX Runtime running our exporter's fp32 graph.</summary>
    public const string Onnx = "onnx";
    /// <summary>ONNX Runtime running our exporter's int8 graph.</summary>
    public const string OnnxInt8 = "onnx-int8";
    /// <summary>Our TorchSharp models, as the torch serving engine runs them.</summary>
    public const string TorchSharp = "torch";
    /// <summary>The PyTorch reference in eager mode, OMP_WAIT_POLICY=PASSIVE.</summary>
    public const string PyTorch = "pytorch";
    /// <summary>The same with libgomp's default spin-waiting (the old, unfair configuration), opt-in.</summary>
    public const string PyTorchSpinning = "pytorch-spin";

    public static readonly string[] All = { Anchor, Onnx, OnnxInt8, TorchSharp, PyTorch, PyTorchSpinning };
    public static readonly string[] Default = { Anchor, Onnx, OnnxInt8, TorchSharp, PyTorch };

    public static string Title(string key) => key switch
    {
        Anchor => "ORT anchor (torch.onnx.export, fp32)",
        Onnx => "ONNX, ours (fp32)",
        OnnxInt8 => "ONNX, ours (int8)",
        TorchSharp => "TorchSharp (fp32)",
        PyTorch => "PyTorch eager (fp32)",
        PyTorchSpinning => "PyTorch eager, OpenMP spinning (fp32)",
        _ => key,
    };

    public static bool IsPyTorch(string key) => key is PyTorch or PyTorchSpinning;
}
