namespace BeitV2.Ml.Data;

/// <summary>
/// Deterministic index selections: a seeded train/validation split and seeded subsets of a given
/// size. The same (count, fraction or size, seed) always gives the same indices; both parts of a
/// split are returned in ascending order.
/// </summary>
public static class DatasetSplit
{
    /// <summary>
    /// Splits 0..count-1 at random into train and validation indices, with
    /// <c>round(count · validationFraction)</c> validation items (half to even), but at least one
    /// of each when count ≥ 2 and the fraction is strictly between 0 and 1.
    /// </summary>
    public static (int[] Train, int[] Validation) TrainValidation(int count, double validationFraction, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (!(validationFraction >= 0 && validationFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "must be in [0, 1]");
        int validation = (int)Math.Round(count * validationFraction, MidpointRounding.ToEven);
        if (count >= 2 && validationFraction > 0 && validationFraction < 1)
            validation = Math.Clamp(validation, 1, count - 1);

        var order = Permutation(count, seed);
        var val = order.AsSpan(0, validation).ToArray();
        var train = order.AsSpan(validation).ToArray();
        Array.Sort(val);
        Array.Sort(train);
        return (train, val);
    }

    /// <summary>A random subset of <paramref name="take"/> of the indices 0..count-1, ascending (all of them when take ≥ count).</summary>
    public static int[] Take(int count, int take, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(take);
        var chosen = Permutation(count, seed).AsSpan(0, Math.Min(take, count)).ToArray();
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>A seeded random permutation of 0..count-1 (Fisher–Yates).</summary>
    public static int[] Permutation(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var order = new int[count];
        for (int i = 0; i < count; i++) order[i] = i;
        var random = SeedMixer.Create(seed, 0x5EED);
        for (int i = count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
