namespace BeitV2.Ml.Data;

/// <summary>
/// Bounds on an uploaded dataset archive. The sizes the archive declares are checked before anything
/// is written, and the bytes actually inflated are counted while extracting (zip headers can lie),
/// so a zip bomb stops at the limit.
/// </summary>
/// <param name="MaxTotalBytes">Largest total of extracted bytes (one dataset's size).</param>
/// <param name="MaxFiles">Largest number of extracted files (skipped entries do not count).</param>
/// <param name="MaxFileBytes">Largest single file.</param>
public sealed record ArchiveLimits(long MaxTotalBytes, int MaxFiles, long MaxFileBytes)
{
    /// <summary>2 GiB in at most 100,000 files of at most 32 MiB (the image decoder's default upload limit).</summary>
    public static ArchiveLimits Default { get; } = new(2L * 1024 * 1024 * 1024, 100_000, 32L * 1024 * 1024);

    /// <summary>
    /// Largest width × height an image or mask may declare in its header; checked before its pixels
    /// are decoded, so a small file that claims huge dimensions costs no memory. Default 64 megapixels.
    /// </summary>
    public long MaxImagePixels { get; init; } = 64_000_000;

    /// <summary>
    /// The room left for this dataset where it is written (free disk space, a storage quota), or null
    /// when unbounded. Exceeding it is <see cref="DatasetError.InsufficientStorage"/> rather than
    /// <see cref="DatasetError.TooLarge"/>: the archive is acceptable, the server is full.
    /// </summary>
    public long? AvailableBytes { get; init; }

    /// <summary>Throws when a limit is not positive.</summary>
    public ArchiveLimits Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxTotalBytes, nameof(MaxTotalBytes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxFiles, nameof(MaxFiles));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxFileBytes, nameof(MaxFileBytes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxImagePixels, nameof(MaxImagePixels));
        if (AvailableBytes is { } room) ArgumentOutOfRangeException.ThrowIfNegative(room, nameof(AvailableBytes));
        return this;
    }
}
