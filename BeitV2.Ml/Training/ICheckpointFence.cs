namespace BeitV2.Ml.Training;

/// <summary>
/// Asked by a trainer right before it writes a checkpoint and before it deletes older ones: a run that no longer holds
/// its job (another server took it over while this one was paused or cut off) must not write or delete anything. The
/// implementation throws (any exception ends the run) when the run has lost its job.
/// </summary>
public interface ICheckpointFence
{
    /// <summary>Before the checkpoint of <paramref name="step"/> is written.</summary>
    void BeforeSave(long step);

    /// <summary>Before checkpoints older than the newest few are deleted.</summary>
    void BeforePrune();
}
