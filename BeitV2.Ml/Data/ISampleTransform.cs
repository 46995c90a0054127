namespace BeitV2.Ml.Data;

/// <summary>
/// Turns a decoded <see cref="ImageSample"/> into model input of a fixed size. Random transforms
/// draw only from the <see cref="Random"/> they are given, so a sample's result is a function of
/// (sample, random seed); implementations must be safe to call from several threads at once
/// (they hold configuration only).
/// </summary>
public interface ISampleTransform
{
    /// <summary>Output side S: pixels are 3·S·S floats, masks S·S values.</summary>
    int Size { get; }

    /// <summary>Side of the second view, or null when the transform produces one view.</summary>
    int? SecondSize { get; }

    /// <summary>Whether every result carries a class map (segmentation).</summary>
    bool ProducesMask { get; }

    /// <summary>Transforms one sample.</summary>
    PreparedSample Apply(ImageSample sample, Random random);
}
