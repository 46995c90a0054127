namespace BeitV2.Ml.Data;

/// <summary>The two halves Fashion-MNIST ships as separate files.</summary>
public enum FashionMnistSplit
{
    /// <summary>60,000 images, <c>train-*-idx?-ubyte</c>.</summary>
    Train,

    /// <summary>10,000 images, <c>t10k-*-idx?-ubyte</c>.</summary>
    Test,
}
