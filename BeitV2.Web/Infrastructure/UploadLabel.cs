namespace BeitV2.Web.Infrastructure;

/// <summary>
/// How an error names the upload it is about: by the file name the request gave, and by its position
/// ("Image 2 of 3", counted from 1) only when the request carried several images. A single unnamed image
/// needs no name at all.
/// </summary>
public static class UploadLabel
{
    /// <summary>The name for the image at <paramref name="index"/> (0-based) of <paramref name="count"/>, or null when none is needed.</summary>
    public static string? Of(int index, int count, string? fileName)
    {
        var name = string.IsNullOrWhiteSpace(fileName) ? null : Path.GetFileName(fileName.Trim());
        if (count > 1) return name is null ? $"Image {index + 1} of {count}" : $"Image {index + 1} of {count} ({name})";
        return name;
    }

    /// <summary>The message prefixed with the image's name ("photo.jpg: the JPEG file is truncated…"), or unchanged when none is needed.</summary>
    public static string Prefix(string message, int index, int count, string? fileName) =>
        Of(index, count, fileName) is { } label && message.Length > 0
            ? $"{label}: {char.ToLowerInvariant(message[0])}{message[1..]}"
            : message;
}
