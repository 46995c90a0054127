namespace BeitV2.Ml.Data;

/// <summary>What a dataset's samples carry besides the image.</summary>
public enum DatasetKind
{
    /// <summary>Images without labels (label -1): MIM pretraining or tokenizer training.</summary>
    Unlabelled,

    /// <summary>One class per image (label 0..C-1).</summary>
    Classification,

    /// <summary>One class per pixel: every sample has a class map of the image's size.</summary>
    Segmentation,
}
