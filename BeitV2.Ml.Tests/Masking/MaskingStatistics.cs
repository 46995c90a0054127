using System.Text.Json;

namespace BeitV2.Ml.Tests.Masking;

/// <summary>
/// Summary statistics of many block-wise masks, computed the way masking_stats.json describes them
/// (4-connected components, per-position frequency, block-phase coverage), and a comparison of two
/// such summaries in units of standard errors.
/// </summary>
public sealed class MaskingStatistics
{
    public int Draws { get; private init; }
    public double ComponentsMean { get; private init; }
    public double ComponentsStd { get; private init; }
    /// <summary>Fourth central moment of components per mask; needed for the standard error of the std.</summary>
    public double ComponentsM4 { get; private init; }
    public double ComponentSizeMean { get; private init; }
    public double ShortFraction { get; private init; }
    public double MaskedByBlocksMean { get; private init; }
    public double MaskedByBlocksStd { get; private init; }
    public double BlocksMean { get; private init; }
    public double BlocksStd { get; private init; }
    public double[] PositionFrequency { get; private init; } = [];
    public int MaskedCount { get; private init; }

    /// <summary>Collects statistics from <paramref name="draws"/> (mask, cells covered by blocks, accepted blocks).</summary>
    public static MaskingStatistics Collect(
        IEnumerable<(bool[] Mask, int MaskedByBlocks, int Blocks)> draws, int height, int width, int maskedCount)
    {
        var components = new List<double>();
        var byBlocks = new List<double>();
        var blocks = new List<double>();
        var freq = new double[height * width];
        long totalMasked = 0;
        int shortDraws = 0;
        foreach (var (mask, maskedByBlocks, blockCount) in draws)
        {
            components.Add(CountComponents(mask, height, width));
            byBlocks.Add(maskedByBlocks);
            blocks.Add(blockCount);
            if (maskedByBlocks < maskedCount) shortDraws++;
            for (int k = 0; k < mask.Length; k++)
                if (mask[k]) { freq[k]++; totalMasked++; }
        }

        int n = components.Count;
        for (int k = 0; k < freq.Length; k++) freq[k] /= n;
        var (cm, cs, c4) = Moments(components);
        var (bm, bs, _) = Moments(byBlocks);
        var (km, ks, _) = Moments(blocks);
        return new MaskingStatistics
        {
            Draws = n,
            ComponentsMean = cm,
            ComponentsStd = cs,
            ComponentsM4 = c4,
            ComponentSizeMean = totalMasked / components.Sum(),
            ShortFraction = (double)shortDraws / n,
            MaskedByBlocksMean = bm,
            MaskedByBlocksStd = bs,
            BlocksMean = km,
            BlocksStd = ks,
            PositionFrequency = freq,
            MaskedCount = maskedCount,
        };
    }

    /// <summary>Reads masking_stats.json (the fixture produced with the Python reference).</summary>
    public static MaskingStatistics LoadReference(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        int n = root.GetProperty("num_draws").GetInt32();
        int size = root.GetProperty("config").GetProperty("input_size").GetInt32();
        int count = root.GetProperty("config").GetProperty("num_masking_patches").GetInt32();

        // The fourth moment is not stored, but the histogram is exact, so recompute it from there.
        var hist = root.GetProperty("components_per_mask_histogram").EnumerateObject()
            .Select(p => (Value: double.Parse(p.Name), Count: p.Value.GetInt32())).ToList();
        double mean = hist.Sum(h => h.Value * h.Count) / n;
        double m4 = hist.Sum(h => Math.Pow(h.Value - mean, 4) * h.Count) / n;

        var blockPhase = root.GetProperty("block_phase");
        int fullByBlocks = blockPhase.GetProperty("masked_by_blocks_histogram").GetProperty(count.ToString()).GetInt32();
        var freq = root.GetProperty("position_frequency").EnumerateArray()
            .SelectMany(row => row.EnumerateArray().Select(v => v.GetDouble())).ToArray();
        if (freq.Length != size * size) throw new InvalidDataException("position_frequency is not input_size².");

        return new MaskingStatistics
        {
            Draws = n,
            ComponentsMean = root.GetProperty("components_per_mask").GetProperty("mean").GetDouble(),
            ComponentsStd = root.GetProperty("components_per_mask").GetProperty("std").GetDouble(),
            ComponentsM4 = m4,
            ComponentSizeMean = root.GetProperty("component_size").GetProperty("mean").GetDouble(),
            ShortFraction = 1.0 - (double)fullByBlocks / n,
            MaskedByBlocksMean = blockPhase.GetProperty("masked_by_blocks").GetProperty("mean").GetDouble(),
            MaskedByBlocksStd = blockPhase.GetProperty("masked_by_blocks").GetProperty("std").GetDouble(),
            BlocksMean = blockPhase.GetProperty("blocks_per_mask").GetProperty("mean").GetDouble(),
            BlocksStd = blockPhase.GetProperty("blocks_per_mask").GetProperty("std").GetDouble(),
            PositionFrequency = freq,
            MaskedCount = count,
        };
    }

    /// <summary>
    /// Compares two independent samples. Each statistic's difference is divided by the standard error
    /// of the difference (both samples' errors combined); every |z| above <paramref name="maxZ"/> is
    /// reported. Returns an empty list when everything agrees.
    /// </summary>
    public static List<string> Compare(MaskingStatistics mine, MaskingStatistics reference, double maxZ)
    {
        var failures = new List<string>();
        void Check(string name, double a, double b, double se)
        {
            double z = (a - b) / se;
            if (!(Math.Abs(z) <= maxZ)) failures.Add($"{name}: got {a:G6}, reference {b:G6}, z = {z:F2} (SE {se:G3})");
        }

        double n1 = mine.Draws, n2 = reference.Draws;
        Check("components per mask, mean", mine.ComponentsMean, reference.ComponentsMean,
            Math.Sqrt(Sq(mine.ComponentsStd) / n1 + Sq(reference.ComponentsStd) / n2));

        // SE of a sample std: sqrt((m4 - s^4) / (4 s^2 n)) (delta method; the distribution is skewed,
        // so the normal-theory s/sqrt(2n) would be too small).
        static double StdVar(MaskingStatistics s) =>
            (s.ComponentsM4 - Math.Pow(s.ComponentsStd, 4)) / (4 * Sq(s.ComponentsStd) * s.Draws);
        Check("components per mask, std", mine.ComponentsStd, reference.ComponentsStd,
            Math.Sqrt(StdVar(mine) + StdVar(reference)));

        // Mean component size over all components = masked / mean components per mask, so its SE
        // follows from the components SE (delta method), not from the component-size std: sizes
        // within one mask are dependent (they add up to the masked count).
        static double SizeVar(MaskingStatistics s) =>
            Sq(s.MaskedCount / Sq(s.ComponentsMean)) * Sq(s.ComponentsStd) / s.Draws;
        Check("component size, mean", mine.ComponentSizeMean, reference.ComponentSizeMean,
            Math.Sqrt(SizeVar(mine) + SizeVar(reference)));

        double pPool = (mine.ShortFraction * n1 + reference.ShortFraction * n2) / (n1 + n2);
        Check("fraction of draws where blocks stop short", mine.ShortFraction, reference.ShortFraction,
            Math.Sqrt(pPool * (1 - pPool) * (1 / n1 + 1 / n2)));
        Check("cells covered by blocks, mean", mine.MaskedByBlocksMean, reference.MaskedByBlocksMean,
            Math.Sqrt(Sq(mine.MaskedByBlocksStd) / n1 + Sq(reference.MaskedByBlocksStd) / n2));
        Check("accepted blocks per mask, mean", mine.BlocksMean, reference.BlocksMean,
            Math.Sqrt(Sq(mine.BlocksStd) / n1 + Sq(reference.BlocksStd) / n2));

        int side = (int)Math.Round(Math.Sqrt(reference.PositionFrequency.Length));
        for (int k = 0; k < reference.PositionFrequency.Length; k++)
        {
            double a = mine.PositionFrequency[k], b = reference.PositionFrequency[k];
            double p = (a * n1 + b * n2) / (n1 + n2);
            // Binomial SE of a difference of two frequencies, floored so a cell that is (almost)
            // never masked in both samples does not divide by zero.
            double se = Math.Max(Math.Sqrt(p * (1 - p) * (1 / n1 + 1 / n2)), 1e-4);
            Check($"position ({k / side},{k % side}) frequency", a, b, se);
        }

        return failures;
    }

    /// <summary>Number of 4-connected components of true cells.</summary>
    public static int CountComponents(bool[] mask, int height, int width)
    {
        var seen = new bool[mask.Length];
        var stack = new Stack<int>();
        int components = 0;
        for (int start = 0; start < mask.Length; start++)
        {
            if (!mask[start] || seen[start]) continue;
            components++;
            seen[start] = true;
            stack.Push(start);
            while (stack.Count > 0)
            {
                int c = stack.Pop();
                int r = c / width, col = c % width;
                if (r > 0) Visit(c - width);
                if (r < height - 1) Visit(c + width);
                if (col > 0) Visit(c - 1);
                if (col < width - 1) Visit(c + 1);
            }
        }

        return components;

        void Visit(int k)
        {
            if (mask[k] && !seen[k]) { seen[k] = true; stack.Push(k); }
        }
    }

    private static (double Mean, double Std, double M4) Moments(List<double> xs)
    {
        double mean = xs.Average();
        double m2 = xs.Sum(x => Sq(x - mean)) / xs.Count;
        double m4 = xs.Sum(x => Sq(Sq(x - mean))) / xs.Count;
        return (mean, Math.Sqrt(m2), m4);
    }

    private static double Sq(double x) => x * x;
}
