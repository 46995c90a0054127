namespace BeitV2.Ml.Data;

/// <summary>
/// Why a dataset could not be read or imported. All but <see cref="NotFound"/> describe a problem
/// with the data itself (an uploaded archive or folder), so a web layer can map them to 4xx
/// statuses (e.g. <see cref="TooLarge"/> to 413, the rest to 400/422).
/// </summary>
public enum DatasetError
{
    /// <summary>A folder or file the dataset needs does not exist.</summary>
    NotFound,

    /// <summary>The upload is not a readable zip archive (corrupt, truncated, encrypted, unsupported compression).</summary>
    InvalidArchive,

    /// <summary>An archive entry would be written outside the target folder (absolute path, <c>..</c>) or is a symbolic link.</summary>
    UnsafeArchive,

    /// <summary>The archive exceeds a limit of <see cref="ArchiveLimits"/> (bytes or files).</summary>
    TooLarge,

    /// <summary>The folder structure is not one of the supported layouts, or images and masks do not pair up.</summary>
    InvalidLayout,

    /// <summary>A segmentation mask is not an 8-bit class-index PNG, has the wrong size or an unknown class.</summary>
    InvalidMask,

    /// <summary>A data file (e.g. an IDX file or <c>classes.txt</c>) is malformed.</summary>
    InvalidData,

    /// <summary>An image file cannot be decoded (see the inner <see cref="Imaging.ImageDecodeException"/>).</summary>
    CorruptImage,

    /// <summary>The archive would not fit in the room left for it (<see cref="ArchiveLimits.AvailableBytes"/>: free disk space, a quota).</summary>
    InsufficientStorage,
}
