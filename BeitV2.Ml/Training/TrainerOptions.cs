using BeitV2.Ml.Devices;
using BeitV2.Ml.Precision;

namespace BeitV2.Ml.Training;

/// <summary>
/// Settings every trainer shares. Defaults are small and test-friendly; each trainer's options type
/// sets its own defaults and offers the reference recipes as named presets.
/// </summary>
public abstract record TrainerOptions
{
    /// <summary>Epochs of the plan (the lr schedule spans all of them).</summary>
    public int Epochs { get; init; } = 1;
    /// <summary>Stop after this many optimiser steps in total (counted across resumes); the schedule still spans the whole plan.</summary>
    public long? MaxSteps { get; init; }
    /// <summary>Seed of torch's global generator at the start of a fresh run (a resumed run restores the saved generator state instead).</summary>
    public long Seed { get; init; }

    /// <summary>Peak learning rate (after warmup).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Final value of the cosine schedule (<c>--min_lr</c>).</summary>
    public double MinLearningRate { get; init; } = 1e-6;
    /// <summary>Linear warmup from 0, in epochs (<c>--warmup_epochs</c>).</summary>
    public int WarmupEpochs { get; init; }
    /// <summary>Warmup in iterations; overrides <see cref="WarmupEpochs"/> when &gt; 0 (<c>--warmup_steps</c>).</summary>
    public int WarmupSteps { get; init; } = -1;

    public double WeightDecay { get; init; } = 0.05;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Eps { get; init; } = 1e-8;
    /// <summary>Clip the global L2 norm of the gradients to this value (null: no clipping).</summary>
    public double? ClipGrad { get; init; }

    /// <summary>"cpu", "cuda", "cuda:N" or "auto" (see <see cref="TorchRuntime.ResolveDevice"/>).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Mixed precision of the forward passes (training steps and evaluation): <see cref="ComputePrecision.Bf16"/>
    /// or <see cref="ComputePrecision.Fp16"/> run the models' matmul-heavy ops in that dtype through
    /// <see cref="Autocast"/> while weights, optimiser state, normalisation, softmax and losses stay
    /// float32; fp16 adds dynamic loss scaling (<see cref="DynamicLossScaler"/>). Meant for CUDA; both work on the CPU too (slowly).
    /// </summary>
    public ComputePrecision MixedPrecision { get; init; } = ComputePrecision.Fp32;
    /// <summary>fp16 only: the loss scale of the first step (PyTorch's GradScaler default 2^16).</summary>
    public double InitialLossScale { get; init; } = 65536.0;
    /// <summary>fp16 only: finite steps in a row after which the loss scale doubles.</summary>
    public int LossScaleGrowthInterval { get; init; } = 2000;
    /// <summary>fp16 only: this many skipped steps in a row (non-finite gradients at every scale) stop the run as diverged.</summary>
    public int MaxConsecutiveSkippedSteps { get; init; } = 50;

    /// <summary>
    /// Taken around every training step and every evaluation batch when set: the fair lock that lets
    /// inference share the device between steps (see <see cref="DeviceGate"/>). Null: no sharing protocol.
    /// </summary>
    public DeviceGate? Gate { get; init; }

    /// <summary>Send a step report at least every this many steps …</summary>
    public int ReportEverySteps { get; init; } = 10;
    /// <summary>… and at least this often.</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Evaluate on the held-out split every this many epochs (and after the last); 0 = only after the last.</summary>
    public int EvaluateEveryEpochs { get; init; } = 1;

    /// <summary>Folder for training checkpoints (<c>checkpoint-{step:D8}</c>, each written atomically); null = none.</summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>Also checkpoint every this many steps (0 = off).</summary>
    public int CheckpointEverySteps { get; init; }
    /// <summary>Checkpoint at the end of every this many epochs (0 = off); cancellation and the end of the run always checkpoint.</summary>
    public int CheckpointEveryEpochs { get; init; } = 1;
    /// <summary>How many checkpoints to keep (the newest ones; at least 1).</summary>
    public int KeepCheckpoints { get; init; } = 3;
    /// <summary>Asked before every checkpoint save and prune (a server's lease on its job); null = always allowed.</summary>
    public ICheckpointFence? CheckpointFence { get; init; }
    /// <summary>A checkpoint folder to continue from: weights, optimiser, counters, generator state and epoch accumulators are restored.</summary>
    public string? ResumeFrom { get; init; }

    /// <summary>When set, the final model is saved there as a model package (manifest + safetensors) on completion.</summary>
    public string? OutputDirectory { get; init; }

    internal virtual void Validate()
    {
        Require(Epochs >= 1, $"epochs must be at least 1, got {Epochs}");
        Require(MaxSteps is null or >= 0, $"max steps must be non-negative, got {MaxSteps}");
        Require(LearningRate >= 0 && MinLearningRate >= 0, "learning rates must be non-negative");
        Require(WarmupEpochs >= 0, "warmup epochs must be non-negative");
        Require(WeightDecay >= 0, "weight decay must be non-negative");
        Require(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, "betas must be in [0, 1)");
        Require(ClipGrad is null or > 0, "clip_grad must be positive");
        Require(ReportEverySteps >= 1, "report interval in steps must be at least 1");
        Require(InitialLossScale > 0 && !double.IsInfinity(InitialLossScale), "the initial loss scale must be positive and finite");
        Require(LossScaleGrowthInterval >= 1 && MaxConsecutiveSkippedSteps >= 1, "loss-scale intervals must be at least 1");
        Require(EvaluateEveryEpochs >= 0 && CheckpointEverySteps >= 0 && CheckpointEveryEpochs >= 0, "intervals must be non-negative");
        Require(KeepCheckpoints >= 1, $"at least one checkpoint must be kept, got {KeepCheckpoints}");
    }

    internal static void Require(bool ok, string message)
    {
        if (!ok) throw new ArgumentException("Invalid training options: " + message);
    }
}
