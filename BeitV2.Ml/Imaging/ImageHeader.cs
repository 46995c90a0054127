namespace BeitV2.Ml.Imaging;

/// <summary>
/// What an image's header declares, read without decoding any pixel (<see cref="ImageDecoder.ReadHeader"/>):
/// enough to budget the memory its decoding will take before committing to it.
/// </summary>
/// <param name="Width">Declared width in pixels.</param>
/// <param name="Height">Declared height in pixels.</param>
/// <param name="FormatName">The format's name (PNG, JPEG, ...), for messages.</param>
public sealed record ImageHeader(int Width, int Height, string FormatName)
{
    /// <summary>Width × height.</summary>
    public long Pixels => (long)Width * Height;

    /// <summary>The size of the decoded RGB24 pixel buffer, the dominant allocation of decoding.</summary>
    public long DecodedBytes => Pixels * 3;
}
