namespace BeitV2.Ml.Imaging;

/// <summary>
/// The single exception <see cref="ImageDecoder"/> raises for bad input. ImageSharp reports
/// problems through several unrelated exception types (and, for some corrupt files, through plain
/// runtime exceptions); folding them into one type with an <see cref="Error"/> kind lets callers
/// handle "the user sent a bad image" in one place without catching every exception.
/// </summary>
public sealed class ImageDecodeException : Exception
{
    /// <summary>Creates the exception for the given failure kind.</summary>
    public ImageDecodeException(ImageDecodeError error, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Error = error;
    }

    /// <summary>What went wrong, in a form a web layer can map to a status code.</summary>
    public ImageDecodeError Error { get; }
}
