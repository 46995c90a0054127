namespace BeitV2.Ml.Serving;

/// <summary>What a served model is asked for; one batch runs one operation.</summary>
public enum Operation
{
    /// <summary>Visual token ids per patch (VQ-KD tokenizer).</summary>
    Tokens,
    /// <summary>Pooled features: the [CLS] token and the mean of the patch tokens.</summary>
    Features,
    /// <summary>Class probabilities (a classifier head).</summary>
    Classify,
    /// <summary>A class index per pixel (segmenter).</summary>
    Segment,
}

public static class OperationNames
{
    /// <summary>The lower-case name used in metric labels and logs ("tokens", "features", "classify", "segment").</summary>
    public static string Name(this Operation operation) => operation switch
    {
        Operation.Tokens => "tokens",
        Operation.Features => "features",
        Operation.Classify => "classify",
        Operation.Segment => "segment",
        _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
    };
}
