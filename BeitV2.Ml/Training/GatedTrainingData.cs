using BeitV2.Ml.Devices;

namespace BeitV2.Ml.Training;

/// <summary>
/// Holds a <see cref="DeviceGate"/> while the consumer works on each batch: the turn is taken when a
/// batch is handed out and given back when the next one is asked for (before it is loaded) or when
/// the enumeration ends, so data loading never holds the device.
/// </summary>
internal sealed class GatedTrainingData(ITrainingData inner, DeviceGate gate) : ITrainingData
{
    public int BatchesPerEpoch => inner.BatchesPerEpoch;

    public IEnumerable<TrainingBatch> GetBatches(int epoch, int skip = 0)
    {
        IDisposable? turn = null;
        try
        {
            foreach (var batch in inner.GetBatches(epoch, skip))
            {
                turn = gate.Enter();
                yield return batch;
                turn.Dispose();
                turn = null;
            }
        }
        finally
        {
            turn?.Dispose();
        }
    }
}
