namespace BeitV2.Ml.Onnx;

/// <summary>
/// The names shared by the exporters and the ONNX serving path: every exported graph takes <see cref="Images"/>
/// (B, 3, S, S) float32, already preprocessed as the model's manifest says, and names its served outputs as below.
/// Diagnostic outputs (block outputs and intermediate values, for parity tests) are only written when
/// <see cref="OnnxExportOptions.Diagnostics"/> asks for them.
/// </summary>
public static class OnnxNames
{
    /// <summary>The symbolic batch dimension.</summary>
    public const string BatchDim = "batch";

    /// <summary>Input: preprocessed pixels (B, 3, S, S), float32.</summary>
    public const string Images = "images";
    /// <summary>Optional input (MIM, diagnostics only): (B, N) bool mask of patches replaced by [MASK].</summary>
    public const string BoolMaskedPos = "bool_masked_pos";

    /// <summary>Features: the final [CLS] token (B, C), as <c>ServedVit</c>/<c>ServedMim</c> return it.</summary>
    public const string Cls = "cls";
    /// <summary>
    /// Features: the pooled patch tokens (B, C), as <c>ServedVit</c>/<c>ServedMim</c> return it; read with classify (the
    /// classifier's) and segment (the segmenter backbone's deepest selected block's) for the out-of-domain score.
    /// </summary>
    public const string Mean = "mean";
    /// <summary>Classify: softmax over the classes (B, K).</summary>
    public const string Probs = "probs";
    /// <summary>Tokens: VQ-KD code index per patch (B, N), int64.</summary>
    public const string TokenIds = "token_ids";
    /// <summary>Segment: class index per pixel of the input (B, S, S), int64.</summary>
    public const string Classes = "classes";

    /// <summary>Diagnostics: raw output of block <paramref name="i"/> (B, T, C).</summary>
    public static string Hidden(int i) => $"hidden_{i}";
}
