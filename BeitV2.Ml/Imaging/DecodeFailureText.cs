namespace BeitV2.Ml.Imaging;

/// <summary>
/// What an ImageSharp decoding failure means, in words a person understands ("the JPEG file is truncated")
/// instead of the decoder's own text ("Input stream does not have enough bytes to parse declared contents of
/// the C4 marker") or its exception type. The decoder's text stays on the inner exception, for the server log.
/// </summary>
internal static class DecodeFailureText
{
    /// <param name="failure">What the decoder threw.</param>
    /// <param name="formatName">The format the bytes announce ("JPEG", "PNG"), or null when not even that is known.</param>
    public static string Describe(Exception failure, string? formatName)
    {
        var file = formatName is null ? "The image file" : $"The {formatName} file";
        var text = failure.Message;
        if (failure is EndOfStreamException || Mentions(text, "not enough bytes", "not enough data", "end of stream", "unexpected end", "does not have enough"))
            return $"{file} is truncated: it ends before all of its data (was the upload or download cut short?).";
        if (Mentions(text, "CRC"))
            return $"{file} is damaged: a checksum does not match its data.";
        if (Mentions(text, "does not contain a data chunk", "no readable sofn", "missing the image"))
            return $"{file} is damaged: it holds no picture data.";
        if (Mentions(text, "missing soi", "does not contain a header", "bad app", "marker"))
            return $"{file} is damaged: its header is not valid.";
        return $"{file} is damaged and cannot be decoded.";
    }

    private static bool Mentions(string text, params string[] phrases) =>
        phrases.Any(p => text.Contains(p, StringComparison.OrdinalIgnoreCase));
}
