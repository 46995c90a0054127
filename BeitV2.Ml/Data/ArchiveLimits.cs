namespace BeitV2.Ml.Data;

/// <summary>
/// Bounds on an uploaded dataset archive, checked against the bytes actually inflated (not the
/// sizes the archive declares), so a zip bomb stops at the limit.
/// </summary>
/// <param name="MaxTotalBytes">Largest total of extracted bytes.</param>
/// <param name="MaxFiles">Largest number of extracted files (skipped junk entries do not count).</param>
/// <param name="MaxFileBytes">Largest single file.</param>
public sealed record ArchiveLimits(long MaxTotalBytes, int MaxFiles, long MaxFileBytes)
{
    /// <summary>2 GiB in at most 100,000 files of at most 32 MiB (the image decoder's default upload limit).</summary>
    public static ArchiveLimits Default { get; } = new(2L * 1024 * 1024 * 1024, 100_000, 32L * 1024 * 1024);

    /// <summary>Throws when a limit is not positive.</summary>
    public ArchiveLimits Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxTotalBytes, nameof(MaxTotalBytes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxFiles, nameof(MaxFiles));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxFileBytes, nameof(MaxFileBytes));
        return this;
    }
}
