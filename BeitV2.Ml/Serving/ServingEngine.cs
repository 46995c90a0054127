namespace BeitV2.Ml.Serving;

/// <summary>What runs a served model's forward pass (<c>Inference:Engine</c>).</summary>
public enum ServingEngine
{
    /// <summary>ONNX Runtime on a graph exported from the model (<see cref="Onnx.OnnxServedModel"/>); the default.</summary>
    Onnx,
    /// <summary>TorchSharp, the training code's own modules (<see cref="TorchServedModel"/>).</summary>
    Torch,
}

public static class ServingEngines
{
    /// <summary>The configuration name: "onnx" or "torch".</summary>
    public static string Name(this ServingEngine engine) => engine switch
    {
        ServingEngine.Onnx => "onnx",
        ServingEngine.Torch => "torch",
        _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, null),
    };

    /// <summary>Parses "onnx" or "torch" (case-insensitive, blank = onnx).</summary>
    public static bool TryParse(string? text, out ServingEngine engine)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case null or "" or "onnx": engine = ServingEngine.Onnx; return true;
            case "torch": engine = ServingEngine.Torch; return true;
            default: engine = default; return false;
        }
    }
}
