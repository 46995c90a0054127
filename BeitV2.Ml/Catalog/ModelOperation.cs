namespace BeitV2.Ml.Catalog;

/// <summary>
/// What a loaded model can be asked to compute when it is served. The lower-case names are the
/// operation names of the inference API (<c>tokens</c>, <c>features</c>, <c>classify</c>, <c>segment</c>).
/// </summary>
public enum ModelOperation
{
    /// <summary>Visual token ids per patch (a VQ-KD tokenizer).</summary>
    Tokens,
    /// <summary>Pooled image features (the [CLS] token and the patch mean).</summary>
    Features,
    /// <summary>Class probabilities (a ViT with a classification head).</summary>
    Classify,
    /// <summary>Per-pixel class logits (a segmenter).</summary>
    Segment,
}
