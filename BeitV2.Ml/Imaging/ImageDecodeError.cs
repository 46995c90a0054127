namespace BeitV2.Ml.Imaging;

/// <summary>
/// Why an image could not be decoded. Every value is a problem with the client's input, so a web
/// layer can map all of them to a 4xx status (e.g. TooLarge to 413, UnknownFormat to 415, the rest to 400/422).
/// </summary>
public enum ImageDecodeError
{
    /// <summary>No bytes at all.</summary>
    Empty,

    /// <summary>The bytes are not an image format the decoder knows, or use an unsupported variant of it.</summary>
    UnknownFormat,

    /// <summary>The format was recognised but the data is truncated or malformed.</summary>
    Corrupt,

    /// <summary>The encoded data or the declared pixel count exceeds <see cref="ImageLimits"/>.</summary>
    TooLarge,

    /// <summary>The header declares a width or height of zero.</summary>
    ZeroSize,

    /// <summary>The image is thinner than <see cref="ImageLimits.MaxAspectRatio"/> allows.</summary>
    AspectRatio,
}
