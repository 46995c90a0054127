namespace BeitV2.Ml.Training;

/// <summary>
/// How much a tokenizer's codes say about the class of the image they come from: each code is credited with its most
/// frequent image label, and purity is the share of all patches whose code's majority label is their image's label.
/// The same with the labels shuffled across images is the baseline a semantics-free codebook would reach (a code used
/// by few patches is "pure" by chance), so the gap between the two is what the codes know.
/// </summary>
public sealed class CodeClassPurity(int codebookSize, int classes)
{
    private readonly List<int[]> codes = [];
    private readonly List<long> labels = [];

    /// <summary>One image's codes and its label (labels outside 0..classes−1 are ignored).</summary>
    public void Add(ReadOnlySpan<long> imageCodes, long label)
    {
        if (label < 0 || label >= classes) return;
        var copy = new int[imageCodes.Length];
        for (var i = 0; i < copy.Length; i++) copy[i] = (int)imageCodes[i];
        codes.Add(copy);
        labels.Add(label);
    }

    public int Images => labels.Count;

    /// <summary>Purity with the true labels, and with the labels permuted by a generator seeded with <paramref name="seed"/>.</summary>
    public (double Purity, double ShuffledPurity) Compute(int seed = 0)
    {
        if (labels.Count == 0) return (0, 0);
        var shuffled = labels.ToArray();
        new Random(seed).Shuffle(shuffled);
        return (Of(labels), Of(shuffled));
    }

    private double Of(IReadOnlyList<long> imageLabels)
    {
        var counts = new long[(long)codebookSize * classes];
        long total = 0;
        for (var i = 0; i < codes.Count; i++)
            foreach (var code in codes[i])
            {
                if (code < 0 || code >= codebookSize) continue;
                counts[(long)code * classes + imageLabels[i]]++;
                total++;
            }
        long majority = 0;
        for (var code = 0; code < codebookSize; code++)
        {
            long best = 0;
            for (var c = 0; c < classes; c++) best = Math.Max(best, counts[(long)code * classes + c]);
            majority += best;
        }
        return total == 0 ? 0 : (double)majority / total;
    }
}
