namespace BeitV2.Ml.Domain;

/// <summary>
/// The area under the ROC curve of a score that should be higher for positives: the probability that a random positive
/// scores above a random negative, ties counting one half (the Mann–Whitney U statistic over n₊·n₋).
/// </summary>
public static class Auroc
{
    /// <exception cref="ArgumentException">either set is empty.</exception>
    public static double Of(IReadOnlyList<double> positives, IReadOnlyList<double> negatives)
    {
        if (positives.Count == 0 || negatives.Count == 0) throw new ArgumentException("The AUROC needs at least one positive and one negative.");
        // Rank-sum over the pooled, sorted scores; tied scores share their average rank.
        var all = positives.Select(v => (v, pos: true)).Concat(negatives.Select(v => (v, pos: false))).OrderBy(x => x.v).ToArray();
        double rankSum = 0;
        for (var i = 0; i < all.Length;)
        {
            var j = i;
            while (j < all.Length && all[j].v == all[i].v) j++;
            var rank = (i + 1 + j) / 2.0;   // average of ranks i+1 … j
            for (var k = i; k < j; k++) if (all[k].pos) rankSum += rank;
            i = j;
        }
        double np = positives.Count, nn = negatives.Count;
        return (rankSum - np * (np + 1) / 2) / (np * nn);
    }
}
