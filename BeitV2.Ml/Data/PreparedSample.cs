namespace BeitV2.Ml.Data;

/// <summary>
/// A transformed sample, ready to be stacked into a batch: CHW float32 pixels and, depending on the
/// transform, a second (tokenizer) view and a class map of the output size.
/// </summary>
public sealed class PreparedSample
{
    /// <summary>Creates the sample.</summary>
    /// <param name="pixels">3·S·S floats, CHW.</param>
    /// <param name="label">Image label (-1 when none).</param>
    /// <param name="mask">S·S class indices (255 = ignore), or null.</param>
    /// <param name="secondPixels">3·S2·S2 floats of the tokenizer view, or null.</param>
    public PreparedSample(float[] pixels, int label, byte[]? mask = null, float[]? secondPixels = null)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        Pixels = pixels;
        Label = label;
        Mask = mask;
        SecondPixels = secondPixels;
    }

    /// <summary>The model input, CHW float32.</summary>
    public float[] Pixels { get; }

    /// <summary>Image label, -1 when none.</summary>
    public int Label { get; }

    /// <summary>Per-pixel classes at the output size, or null.</summary>
    public byte[]? Mask { get; }

    /// <summary>The second view (MIM tokenizer input), or null.</summary>
    public float[]? SecondPixels { get; }
}
