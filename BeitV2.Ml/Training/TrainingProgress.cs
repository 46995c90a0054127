namespace BeitV2.Ml.Training;

/// <summary>What a progress report is about.</summary>
public enum TrainingEvent
{
    /// <summary>Periodic report during an epoch (every N steps or every few seconds).</summary>
    Step,
    /// <summary>An epoch finished; <see cref="TrainingProgress.Metrics"/> holds its averages and stage metrics.</summary>
    EpochEnd,
    /// <summary>An evaluation on the held-out split finished.</summary>
    Evaluation,
    /// <summary>A checkpoint was written.</summary>
    Checkpoint,
    /// <summary>The run ended (completed, budget reached or cancelled).</summary>
    Finished,
}

/// <summary>
/// A progress report of a trainer.
/// </summary>
/// <param name="Stage">"tokenizer", "pretrain", "probe", "finetune" or "segmentation".</param>
/// <param name="Event">why this report was sent.</param>
/// <param name="Epoch">0-based index of the current epoch.</param>
/// <param name="Epochs">epochs planned.</param>
/// <param name="Step">optimiser steps done so far in the whole run (continues across a resume).</param>
/// <param name="Steps">steps this run will do in total (the budget).</param>
/// <param name="Loss">loss of the last step (NaN before the first one).</param>
/// <param name="LearningRate">the schedule value of the last step (groups with lr_scale 1 use exactly this).</param>
/// <param name="ImagesPerSecond">training throughput of this session.</param>
/// <param name="EtaSeconds">estimated time to the end of the run, null until measurable.</param>
/// <param name="Metrics">running epoch means (<c>loss</c>, stage step metrics) merged with the latest epoch and evaluation metrics.</param>
/// <param name="Log">log lines written since the previous report.</param>
public sealed record TrainingProgress(
    string Stage,
    TrainingEvent Event,
    int Epoch,
    int Epochs,
    long Step,
    long Steps,
    double Loss,
    double LearningRate,
    double ImagesPerSecond,
    double? EtaSeconds,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<string> Log)
{
    /// <summary>
    /// Tokenizer runs only (null otherwise): how often each codebook entry was assigned so far in the
    /// current epoch (index = code id; the whole epoch's counts at <see cref="TrainingEvent.EpochEnd"/>).
    /// </summary>
    public IReadOnlyList<double>? CodeCounts { get; init; }
    /// <summary>The folder just written, on <see cref="TrainingEvent.Checkpoint"/> reports.</summary>
    public string? CheckpointPath { get; init; }
}

/// <summary>How a run ended.</summary>
public enum TrainingStatus
{
    /// <summary>All planned epochs / iterations were done.</summary>
    Completed,
    /// <summary>Stopped at <see cref="TrainerOptions.MaxSteps"/> before the plan's end (a checkpoint was written if configured).</summary>
    BudgetReached,
    /// <summary>The cancellation token fired; a checkpoint was written if configured.</summary>
    Cancelled,
}

/// <summary>The outcome of <c>Run</c>.</summary>
/// <param name="Model">the trained model to serve or save: the model given to the trainer, except for the linear probe, which
/// delivers a new classifier built from the backbone and the probe (owned by the caller; a <see cref="LinearProbeClassifier"/>
/// wraps, and does not copy, the backbone).</param>
/// <param name="CheckpointPath">the last checkpoint written, if any.</param>
/// <param name="Metrics">the latest train / evaluation metrics.</param>
public sealed record TrainingResult(
    TrainingStatus Status,
    string Stage,
    long Step,
    int Epoch,
    TorchSharp.torch.nn.Module Model,
    string? CheckpointPath,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyList<string> Log);

/// <summary>A non-finite loss: the run is stopped (the reference exits the same way).</summary>
public sealed class TrainingDivergedException : Exception
{
    public TrainingDivergedException(string stage, long step, double loss, string? hint = null)
        : base($"Training diverged: the {stage} loss is {loss} at step {step} (epoch-independent step counter). " +
               "Lower the learning rate, enable gradient clipping, or check the input data for NaN/inf values; " +
               "resume from the last checkpoint once fixed." + (hint is null ? "" : " " + hint))
    {
        Stage = stage;
        Step = step;
        Loss = loss;
    }

    public string Stage { get; }
    public long Step { get; }
    public double Loss { get; }
}
