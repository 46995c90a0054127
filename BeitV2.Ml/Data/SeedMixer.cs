namespace BeitV2.Ml.Data;

/// <summary>
/// Derives independent, reproducible seeds from a tuple of integers (seed, epoch, index, stream)
/// with SplitMix64's finaliser, so every sample gets its own <see cref="Random"/> whose draws do
/// not depend on which thread prepares it or in which order.
/// </summary>
internal static class SeedMixer
{
    public static int Mix(params ReadOnlySpan<long> parts)
    {
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (long p in parts)
            h = Finalise(h ^ Finalise(unchecked((ulong)p) + 0x9E3779B97F4A7C15UL));
        return unchecked((int)(h ^ (h >> 32)));
    }

    /// <summary>A <see cref="Random"/> seeded from <paramref name="parts"/>.</summary>
    public static Random Create(params ReadOnlySpan<long> parts) => new(Mix(parts));

    private static ulong Finalise(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
