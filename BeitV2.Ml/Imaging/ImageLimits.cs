namespace BeitV2.Ml.Imaging;

/// <summary>
/// Upper bounds an untrusted image must respect before it is decoded. They exist because an image
/// file can be tiny on the wire but enormous once decoded (a "decompression bomb"): the pixel limit
/// is checked from the header alone, before any pixel buffer is allocated.
/// </summary>
/// <param name="MaxPixels">Largest accepted width × height of the decoded image.</param>
/// <param name="MaxBytes">Largest accepted encoded size in bytes (the upload itself).</param>
/// <param name="MaxAspectRatio">Largest accepted longer side / shorter side. Thin images (1×40,000,000) fit the
/// pixel limit but make every resampling step degenerate: the shorter side is scaled up hundreds of thousands
/// of times, so the geometry overflows and the resize costs minutes.</param>
public sealed record ImageLimits(long MaxPixels, long MaxBytes, double MaxAspectRatio = ImageLimits.DefaultMaxAspectRatio)
{
    /// <summary>1:100, far beyond any panorama or scanned receipt.</summary>
    public const double DefaultMaxAspectRatio = 100;

    /// <summary>
    /// 64 megapixels (about 192 MB as RGB24, well above any camera photo) and 32 MiB of encoded data.
    /// </summary>
    public static ImageLimits Default { get; } = new(64_000_000, 32L * 1024 * 1024);

    /// <summary>Throws when a limit is not positive, so a misconfiguration fails at start-up.</summary>
    public ImageLimits Validate()
    {
        if (MaxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(MaxPixels), MaxPixels, "must be positive");
        if (MaxBytes <= 0) throw new ArgumentOutOfRangeException(nameof(MaxBytes), MaxBytes, "must be positive");
        // Above 10,000 the resized longer side (256 × ratio) no longer fits the resampler's int geometry.
        if (!(MaxAspectRatio >= 1 && MaxAspectRatio <= 10_000))
            throw new ArgumentOutOfRangeException(nameof(MaxAspectRatio), MaxAspectRatio, "must be between 1 and 10000");
        return this;
    }
}
