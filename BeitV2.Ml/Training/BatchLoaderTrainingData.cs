using BeitV2.Ml.Data;

namespace BeitV2.Ml.Training;

/// <summary>
/// A <see cref="BatchLoader"/> as the trainers' <see cref="ITrainingData"/>. The loader's batches are a
/// function of (seed, epoch, batch index), so a resumed run gets exactly the batches it would have had.
/// </summary>
/// <remarks>
/// Ownership: the tensors of each loader batch move to the yielded trainer batch (no copy); the
/// trainer disposes it. A resumed epoch (<c>skip</c> &gt; 0) loads only the remaining batches.
/// </remarks>
public sealed class BatchLoaderTrainingData : ITrainingData
{
    /// <param name="loader">The loader (use <see cref="BatchLoaderOptions.DropLast"/> for training, as the reference does).</param>
    /// <param name="fixedEpoch">When set, every epoch serves this epoch's batches (a fixed validation pass).</param>
    public BatchLoaderTrainingData(BatchLoader loader, int? fixedEpoch = null)
    {
        ArgumentNullException.ThrowIfNull(loader);
        Loader = loader;
        FixedEpoch = fixedEpoch;
    }

    public BatchLoader Loader { get; }
    public int? FixedEpoch { get; }

    public int BatchesPerEpoch => Loader.BatchesPerEpoch;

    public IEnumerable<TrainingBatch> GetBatches(int epoch, int skip = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(skip);
        var e = FixedEpoch ?? epoch;
        if (skip == 0)
        {
            foreach (var batch in Loader.Epoch(e)) yield return Convert(batch);
            yield break;
        }
        for (var i = skip; i < Loader.BatchesPerEpoch; i++) yield return Convert(Loader.LoadBatch(e, i));
    }

    /// <summary>Moves the tensors of a loader batch into a trainer batch (labels only when the dataset has them).</summary>
    public static TrainingBatch Convert(Data.TrainingBatch batch) => new()
    {
        Images = batch.Images,
        Labels = batch.Labels,
        Masks = batch.Masks,
        TokenizerImages = batch.TokenizerImages,
        MaskedPositions = batch.MaskedPositions,
    };
}
