namespace BeitV2.Ml.Onnx;

/// <summary>Numeric precision of an exported graph.</summary>
public enum OnnxPrecision
{
    /// <summary>float32 everywhere: parity with the reference at the strict tolerance.</summary>
    Fp32,
    /// <summary>Dynamic int8 quantisation of the MatMul weights (per output channel), activations quantised at run time (CPU).</summary>
    Int8,
}

/// <summary>How a model is written as an ONNX graph.</summary>
/// <param name="Precision">float32, or int8 MatMul weights.</param>
/// <param name="Diagnostics">also output intermediate values (block outputs, pre-argmax values) for parity tests; serving never asks for them.</param>
/// <param name="MaskInput">MIM only: take <see cref="OnnxNames.BoolMaskedPos"/> as a second input (parity with the pretraining forward).</param>
public sealed record OnnxExportOptions(OnnxPrecision Precision = OnnxPrecision.Fp32, bool Diagnostics = false, bool MaskInput = false)
{
    /// <summary>Largest relative position bias (H·T·T floats per block) written as a constant (<see cref="OnnxGraph.ConstantBiasLimit"/>).</summary>
    public long ConstantBiasLimit { get; init; } = Models.Layers.InferenceBiasCache.MaxElements;

    /// <summary>A new graph with these options' settings.</summary>
    public OnnxGraph NewGraph(string name) => new(name) { ConstantBiasLimit = ConstantBiasLimit };

    public static OnnxExportOptions Serving { get; } = new();
}
