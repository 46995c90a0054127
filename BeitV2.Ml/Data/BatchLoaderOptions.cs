using BeitV2.Ml.Masking;

namespace BeitV2.Ml.Data;

/// <summary>How <see cref="BatchLoader"/> orders, groups and prepares samples.</summary>
public sealed record BatchLoaderOptions
{
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Reshuffle the order every epoch (from <see cref="Seed"/> and the epoch number).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Seed of the order, the augmentation and the masks.</summary>
    public int Seed { get; init; }

    /// <summary>Drop the last batch when it is smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Threads preparing the samples of a batch.</summary>
    public int Workers { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>
    /// Items per epoch, when not the whole dataset: epoch e serves the items [e·n, (e+1)·n) of the dataset, indices taken
    /// modulo its size (n is capped at the size), shuffled within the epoch as usual. So successive epochs see new
    /// items — fresh synthetic scenes instead of the same n again — and an epoch is still a function of (seed, epoch),
    /// which keeps a resumed run exact. Null: every epoch serves the whole dataset.
    /// </summary>
    public int? EpochSize { get; init; }

    /// <summary>Prepare the next batch's arrays in the background while the current one is used.</summary>
    public bool Prefetch { get; init; } = true;

    /// <summary>
    /// When set, every batch also carries MIM masks: the function is called once per sample with that
    /// sample's own <see cref="Random"/> and must return a generator drawing from it, e.g.
    /// <c>r =&gt; new BlockMaskingGenerator(14, 75, minNumPatches: 16, random: r)</c>. It is called from
    /// the worker threads concurrently, so it must not share a generator between calls.
    /// </summary>
    public Func<Random, BlockMaskingGenerator>? Masking { get; init; }

    /// <summary>Throws when a value is out of range.</summary>
    public BatchLoaderOptions Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchSize, nameof(BatchSize));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(Workers, nameof(Workers));
        if (EpochSize is { } n) ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n, nameof(EpochSize));
        return this;
    }
}
