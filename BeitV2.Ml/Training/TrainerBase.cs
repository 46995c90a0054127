using System.Diagnostics;
using System.Globalization;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Precision;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>What one training step hands back to the loop: the loss to back-propagate and per-step metrics to average over the epoch.</summary>
internal sealed record StepOutput(Tensor Loss, IReadOnlyDictionary<string, double>? Metrics = null);

/// <summary>
/// The training loop shared by the five trainers, after the reference engines: per iteration
/// lr = schedule[it] × lr_scale for every group, forward, non-finite loss → stop
/// (<see cref="TrainingDivergedException"/>), zero_grad, backward, optional clip_grad_norm_, AdamW
/// step. Around it: deterministic seeding, a step budget, periodic evaluation, progress reports,
/// atomic checkpoints, resume, and cancellation (checkpoint, then stop).
/// </summary>
/// <remarks>
/// Each step (and each hook: epoch start / end, evaluation) runs in its own dispose scope, so a long
/// run does not accumulate native tensors.
/// Gradients are dropped (set to none) after each step: a parameter that gets no gradient in a step
/// is not moved by AdamW, as with PyTorch 2's <c>zero_grad()</c>.
/// With <see cref="TrainerOptions.MixedPrecision"/> the forward passes run under <see cref="Autocast"/>;
/// fp16 scales the loss (<see cref="DynamicLossScaler"/>), unscales the gradients before clipping and
/// skips the optimiser step when they are not finite (metrics <c>lossScale</c>, <c>skippedStepRate</c>).
/// With <see cref="TrainerOptions.Gate"/> every step and evaluation batch holds the device's fair lock.
/// </remarks>
public abstract class TrainerBase
{
    private readonly List<string> pendingLog = new();
    private readonly List<string> allLog = new();
    private readonly Dictionary<string, double> latestMetrics = new(StringComparer.Ordinal);
    private DynamicLossScaler? scaler;

    private protected TrainerBase(string stage, TrainerOptions options)
    {
        options.Validate();
        Stage = stage;
        CommonOptions = options;
        Device = TorchRuntime.ResolveDevice(options.Device);
    }

    /// <summary>One of <see cref="TrainingStages"/>.</summary>
    public string Stage { get; }

    /// <summary>The device the trainer runs on.</summary>
    public Device Device { get; }

    private protected TrainerOptions CommonOptions { get; }

    /// <summary>Accumulators of the epoch in progress, saved in checkpoints and restored on resume.</summary>
    private protected Dictionary<string, double[]> EpochState { get; private set; } = new(StringComparer.Ordinal);

    /// <summary>Seeds torch's CPU generator (and the CUDA ones when CUDA is available). Call it before building a model to make its initial weights reproducible.</summary>
    public static void SeedEverything(long seed)
    {
        manual_seed(seed);
        if (cuda.is_available()) cuda.manual_seed_all(seed);
    }

    // ------------------------------------------------------------------ hooks

    /// <summary>The module whose state dict the checkpoints hold (the trainable model).</summary>
    private protected abstract nn.Module CheckpointModule { get; }

    private protected abstract IReadOnlyList<ParameterGroup> CreateParameterGroups();

    /// <summary>Iterations of the whole plan; default epochs × batches per epoch.</summary>
    private protected virtual long PlannedSteps(int stepsPerEpoch) => (long)CommonOptions.Epochs * stepsPerEpoch;

    /// <summary>The per-iteration lr schedule; default the reference cosine schedule with linear warmup from 0.</summary>
    private protected virtual ILrSchedule CreateSchedule(int stepsPerEpoch, long plannedSteps)
    {
        var o = CommonOptions;
        var warmup = o.WarmupSteps > 0 ? o.WarmupSteps : (long)o.WarmupEpochs * stepsPerEpoch;
        if (warmup > plannedSteps)
            throw new ArgumentException($"Invalid training options: the warmup ({warmup} iterations) is longer than the plan ({plannedSteps} iterations).");
        return CosineSchedule.FromIterations(o.LearningRate, o.MinLearningRate, checked((int)plannedSteps), (int)warmup);
    }

    /// <summary>Moves the models to <see cref="Device"/> (before the optimiser is built).</summary>
    private protected abstract void MoveToDevice();

    /// <summary>Puts the trained parts in train mode and frozen parts in eval mode.</summary>
    private protected abstract void SetTrainMode();

    /// <summary>Forward of one batch (already on the device); runs inside the step's dispose scope.</summary>
    private protected abstract StepOutput TrainStep(TrainingBatch batch, long step);

    /// <summary>Called on a fresh (not resumed) run right after seeding: draw initial weights the trainer owns here, so they follow the seed.</summary>
    private protected virtual void OnFreshStart() { }

    private protected virtual void OnEpochStart(int epoch) { }

    /// <summary>Adds stage metrics of the finished epoch (the running means are already in <paramref name="metrics"/>).</summary>
    private protected virtual void OnEpochEnd(int epoch, Dictionary<string, double> metrics) { }

    /// <summary>Metrics on the held-out split; must leave the training state (weights, statistics) untouched.</summary>
    private protected virtual Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken) => new();

    /// <summary>Per-code assignment counts of the epoch so far, for progress reports (tokenizer only; null by default).</summary>
    private protected virtual IReadOnlyList<double>? ProgressCodeCounts() => null;

    /// <summary>
    /// Metrics of the epoch so far that every progress report carries (not only the epoch's end), so charts of them
    /// are lines rather than one point per epoch; they replace the last epoch's values of the same names.
    /// </summary>
    private protected virtual IReadOnlyDictionary<string, double> ProgressMetrics() => new Dictionary<string, double>();

    /// <summary>The model the run delivers (by default the trained module).</summary>
    private protected virtual nn.Module OutputModel() => CheckpointModule;

    /// <summary>Adds a line to the log of the next progress report.</summary>
    private protected void Log(string line)
    {
        var stamped = $"[{Stage}] {line}";
        pendingLog.Add(stamped);
        allLog.Add(stamped);
        if (allLog.Count > 2000) allLog.RemoveRange(0, allLog.Count - 2000);
    }

    /// <summary>Adds per-element values to a named accumulator of the epoch.</summary>
    private protected void Accumulate(string key, Tensor values)
    {
        var add = values.to(float64).cpu().data<double>().ToArray();
        if (!EpochState.TryGetValue(key, out var acc))
        {
            EpochState[key] = add;
            return;
        }
        if (acc.Length != add.Length) throw new InvalidOperationException($"Accumulator '{key}' changed length ({acc.Length} → {add.Length}).");
        for (var i = 0; i < acc.Length; i++) acc[i] += add[i];
    }

    // ------------------------------------------------------------------ loop

    private protected TrainingResult RunCore(ITrainingData train, ITrainingData? validation, IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken)
    {
        var o = CommonOptions;
        var spe = train.BatchesPerEpoch;
        if (spe <= 0) throw new ArgumentException("The training data has no batches per epoch.", nameof(train));
        var planned = PlannedSteps(spe);
        var epochs = (int)((planned + spe - 1) / spe);

        MoveToDevice();
        scaler = o.MixedPrecision == ComputePrecision.Fp16
            ? new DynamicLossScaler(o.InitialLossScale, growthInterval: o.LossScaleGrowthInterval)
            : null;
        using var optimizer = new GroupedOptimizer(CreateParameterGroups(), o.Beta1, o.Beta2, o.Eps);
        var schedule = CreateSchedule(spe, planned);
        var budget = Math.Min(planned, o.MaxSteps ?? planned);

        long step = 0;
        if (o.ResumeFrom is { } resume)
        {
            var state = TrainingCheckpoint.Load(resume, CheckpointModule, optimizer.Optimizer, restoreRng: true, expectedStage: Stage);
            if (state.StepsPerEpoch != spe)
                throw new ArgumentException(
                    $"The checkpoint was written with {state.StepsPerEpoch} batches per epoch, the training data now has {spe}: " +
                    "the step → epoch mapping (and the schedule) would not continue. Use the same data and batch size to resume.");
            if (state.PlannedSteps != planned)
                Log($"note: the plan changed from {state.PlannedSteps} to {planned} iterations; the schedule is rebuilt for the new plan");
            step = state.Step;
            if (scaler is not null && state.LossScale is { } savedScale)
                scaler.Restore(new LossScalerState(savedScale, state.LossScaleGrowthTracker ?? 0));
            var savedPrecision = state.Precision ?? ComputePrecision.Fp32.Name();
            if (savedPrecision != o.MixedPrecision.Name())
                Log($"note: the checkpoint was trained with {savedPrecision} precision, this run uses {o.MixedPrecision.Name()}");
            EpochState = new Dictionary<string, double[]>(state.EpochState, StringComparer.Ordinal);
            foreach (var (k, v) in state.Metrics) latestMetrics[k] = v;
            Log($"resumed from '{resume}' at step {step} (epoch {step / spe + 1}/{epochs})");
        }
        else
        {
            SeedEverything(o.Seed);
            using (NewDisposeScope()) OnFreshStart();
        }
        Log($"{planned} iterations planned ({epochs} epochs × {spe}), running to step {budget}; {optimizer.Groups.Count} parameter groups, " +
            $"{optimizer.Parameters.Sum(p => p.numel())} trainable parameters on {Device}" +
            (o.MixedPrecision == ComputePrecision.Fp32 ? "" : $", mixed precision {o.MixedPrecision.Name()}" +
                (scaler is null ? "" : string.Create(CultureInfo.InvariantCulture, $" (loss scale {scaler.Scale:G})"))));

        bool StepCheckpointDue(long s) => o.CheckpointEverySteps > 0 && s % o.CheckpointEverySteps == 0;

        var session = new SessionClock();
        double lastLoss = double.NaN, lastLr = step > 0 ? schedule[step - 1] : schedule[0];
        string? lastCheckpoint = null;
        long lastCheckpointStep = -1, lastEvalStep = -1;
        var status = TrainingStatus.Completed;

        void Report(TrainingEvent ev, string? checkpointPath = null)
        {
            if (progress is null)
            {
                pendingLog.Clear();
                return;
            }
            var metrics = new Dictionary<string, double>(latestMetrics, StringComparer.Ordinal);
            foreach (var (k, v) in RunningMeans()) metrics[k] = v;
            if (step > 0) foreach (var (k, v) in ProgressMetrics()) metrics[k] = v;
            // The epoch of the last step done.
            var epochIndex = (int)Math.Min(epochs - 1, Math.Max(0, (step - 1) / spe));
            progress.Report(new TrainingProgress(Stage, ev, epochIndex, epochs, step, budget, lastLoss, lastLr,
                session.ImagesPerSecond, session.Eta(step, budget), metrics, pendingLog.ToList()) { CheckpointPath = checkpointPath, CodeCounts = ProgressCodeCounts() });
            pendingLog.Clear();
            session.MarkReported();
        }

        string? SaveCheckpoint()
        {
            if (o.CheckpointDirectory is null) return null;
            o.CheckpointFence?.BeforeSave(step);
            var path = Path.Combine(o.CheckpointDirectory, TrainingCheckpoint.FolderName(step));
            var metrics = new Dictionary<string, double>(latestMetrics, StringComparer.Ordinal);
            foreach (var (k, v) in RunningMeans()) metrics[k] = v;
            TrainingCheckpoint.Save(path, CheckpointModule, optimizer.Optimizer, new TrainingCheckpointState
            {
                Stage = Stage, Step = step, Epoch = (int)(step / spe), StepsPerEpoch = spe, PlannedSteps = planned, Seed = o.Seed,
                LearningRate = lastLr, EpochState = EpochState.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray()), Metrics = metrics,
                Precision = o.MixedPrecision.Name(), LossScale = scaler?.Scale, LossScaleGrowthTracker = scaler?.GrowthTracker,
            });
            lastCheckpoint = path;
            lastCheckpointStep = step;
            Log($"checkpoint saved at step {step}: {path}");
            // Older checkpoints go only after the new one is complete, so a crash always leaves one.
            o.CheckpointFence?.BeforePrune();
            TrainingCheckpoint.Prune(o.CheckpointDirectory, o.KeepCheckpoints);
            Report(TrainingEvent.Checkpoint, path);
            return path;
        }

        void RunEvaluation()
        {
            if (validation is null) return;
            Dictionary<string, double> evalMetrics;
            using (NewDisposeScope())
            using (Autocast.Enable(o.MixedPrecision))
                evalMetrics = Evaluate(o.Gate is null ? validation : new GatedTrainingData(validation, o.Gate), cancellationToken);
            SetTrainMode();
            if (cancellationToken.IsCancellationRequested)
            {
                Log($"evaluation at step {step} interrupted by cancellation; its partial results are discarded");
                return;
            }
            lastEvalStep = step;
            foreach (var (k, v) in evalMetrics) latestMetrics[k] = v;
            Log("evaluation at step " + step + ": " + FormatMetrics(evalMetrics));
            Report(TrainingEvent.Evaluation);
        }

        for (var epoch = (int)(step / spe); epoch < epochs && step < budget; epoch++)
        {
            var inEpoch = (int)(step - (long)epoch * spe);
            if (inEpoch == 0)
            {
                EpochState.Clear();
                using (NewDisposeScope()) OnEpochStart(epoch);
            }
            SetTrainMode();
            var take = (int)Math.Min(spe - inEpoch, planned - step);
            var taken = 0;
            using (var batches = train.GetBatches(epoch, inEpoch).GetEnumerator())
            {
                while (taken < take)
                {
                    if (cancellationToken.IsCancellationRequested)
                    {
                        status = TrainingStatus.Cancelled;
                        break;
                    }
                    if (step >= budget) break;
                    if (!batches.MoveNext())
                        throw new InvalidOperationException(
                            $"The training data yielded {inEpoch + taken} batches in epoch {epoch}; it promised {spe} (BatchesPerEpoch).");
                    using (var batch = batches.Current)
                    {
                        session.StartStep();
                        lastLr = schedule[step];
                        lastLoss = DoStep(optimizer, batch, step, lastLr);
                        session.EndStep(batch.Count);
                    }
                    step++;
                    taken++;
                    if (step % o.ReportEverySteps == 0 || session.SinceReport >= o.ReportInterval)
                    {
                        Log(string.Create(CultureInfo.InvariantCulture,
                            $"epoch {epoch + 1}/{epochs} step {step}/{budget} loss {lastLoss:F4} lr {lastLr:E3} {session.ImagesPerSecond:F1} img/s"));
                        Report(TrainingEvent.Step);
                    }
                    if (StepCheckpointDue(step) && taken < take && step < budget) SaveCheckpoint();
                }
            }
            if (status == TrainingStatus.Cancelled || taken < take) break;

            // The epoch (or the plan) is complete.
            var epochMetrics = RunningMeans();
            using (NewDisposeScope()) OnEpochEnd(epoch, epochMetrics);
            foreach (var (k, v) in epochMetrics) latestMetrics[k] = v;
            Log($"epoch {epoch + 1}/{epochs} done: " + FormatMetrics(epochMetrics));
            Report(TrainingEvent.EpochEnd);
            var last = step >= planned;
            if (validation is not null && (last || (o.EvaluateEveryEpochs > 0 && (epoch + 1) % o.EvaluateEveryEpochs == 0)))
                RunEvaluation();
            var epochDue = o.CheckpointEveryEpochs > 0 && (epoch + 1) % o.CheckpointEveryEpochs == 0;
            if (!last && step < budget && (epochDue || StepCheckpointDue(step))) SaveCheckpoint();
        }

        if (status != TrainingStatus.Cancelled) status = step >= planned ? TrainingStatus.Completed : TrainingStatus.BudgetReached;
        if (lastCheckpointStep != step) SaveCheckpoint();
        if (status == TrainingStatus.Cancelled)
            Log(o.CheckpointDirectory is null
                ? $"cancelled at step {step}; no checkpoint directory is configured, so nothing was saved"
                : $"cancelled at step {step}");
        else if (lastEvalStep != step) RunEvaluation();

        var model = OutputModel();
        if (status != TrainingStatus.Cancelled && o.OutputDirectory is { } output)
        {
            try
            {
                ModelPackage.Save(model, output, metadata: new Dictionary<string, string>
                {
                    ["trained_by"] = Stage, ["steps"] = step.ToString(CultureInfo.InvariantCulture),
                });
                Log($"model saved to {output}");
            }
            catch (ArgumentException e)
            {
                Log($"warning: the output model cannot be saved as a package ({e.Message}); its weights are in the checkpoint");
            }
        }
        Log($"finished ({status}) at step {step}");
        Report(TrainingEvent.Finished);
        return new TrainingResult(status, Stage, step, (int)Math.Max(0, (step - 1) / spe), model, lastCheckpoint,
            new Dictionary<string, double>(latestMetrics), allLog.ToList());
    }

    private double DoStep(GroupedOptimizer optimizer, TrainingBatch batch, long step, double lr)
    {
        var o = CommonOptions;
        using var scope = NewDisposeScope();
        using var turn = o.Gate?.Enter();
        optimizer.SetLearningRate(lr);
        var onDevice = ToDevice(batch);
        StepOutput output;
        using (Autocast.Enable(o.MixedPrecision)) output = TrainStep(onDevice, step);
        double loss;
        using (var l = output.Loss.detach().to(float64).cpu()) loss = l.item<double>();
        if (!double.IsFinite(loss))
            throw new TrainingDivergedException(Stage, step, loss, o.MixedPrecision == ComputePrecision.Fp16
                ? "Under fp16 mixed precision an activation may have overflowed float16's range (65504): try bf16 or fp32."
                : null);

        optimizer.ZeroGrad();
        if (scaler is null) output.Loss.backward();
        else scaler.ScaleLoss(output.Loss).backward();
        var finite = scaler?.UnscaleAndCheck(optimizer.Parameters) ?? true;
        var gradNorm = double.NaN;
        if (finite)
        {
            if (o.ClipGrad is { } clip) gradNorm = optimizer.ClipGradNorm(clip);
            optimizer.Step();
        }
        optimizer.ZeroGrad();
        if (scaler is not null)
        {
            var usedScale = scaler.Scale;
            scaler.Update(finite);
            AddMean("lossScale", usedScale);
            AddMean("skippedStepRate", finite ? 0 : 1);
            if (!finite)
            {
                Log(string.Create(CultureInfo.InvariantCulture,
                    $"step {step}: non-finite fp16 gradients at loss scale {usedScale:G}; step skipped, scale now {scaler.Scale:G}"));
                if (scaler.ConsecutiveSkips >= o.MaxConsecutiveSkippedSteps)
                    throw new TrainingDivergedException(Stage, step, loss,
                        $"The gradients were not finite in {scaler.ConsecutiveSkips} fp16 steps in a row (loss scale down to {scaler.Scale:G}): try bf16 or fp32.");
            }
        }

        AddMean("loss", loss);
        if (!double.IsNaN(gradNorm)) AddMean("gradNorm", gradNorm);
        if (output.Metrics is not null)
            foreach (var (k, v) in output.Metrics) AddMean(k, v);
        return loss;
    }

    private TrainingBatch ToDevice(TrainingBatch b) => new()
    {
        Images = b.Images.to(Device),
        Labels = b.Labels?.to(Device),
        Masks = b.Masks?.to(Device),
        TokenizerImages = b.TokenizerImages?.to(Device),
        MaskedPositions = b.MaskedPositions?.to(Device),
        Targets = b.Targets?.to(Device),
    };

    private const string MeanPrefix = "mean:";

    private void AddMean(string key, double value)
    {
        if (!EpochState.TryGetValue(MeanPrefix + key, out var acc)) EpochState[MeanPrefix + key] = acc = new double[2];
        acc[0] += value;
        acc[1] += 1;
    }

    private Dictionary<string, double> RunningMeans()
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (k, v) in EpochState)
            if (k.StartsWith(MeanPrefix, StringComparison.Ordinal) && v[1] > 0)
                result[k[MeanPrefix.Length..]] = v[0] / v[1];
        return result;
    }

    private static string FormatMetrics(IReadOnlyDictionary<string, double> metrics) =>
        string.Join(", ", metrics.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:G5}")));

    /// <summary>Wall-clock bookkeeping of this session (throughput and ETA exclude evaluation time).</summary>
    private sealed class SessionClock
    {
        private readonly Stopwatch total = Stopwatch.StartNew();
        private readonly Stopwatch training = new();
        private TimeSpan lastReport = TimeSpan.Zero;
        private long images, steps;

        public void StartStep() => training.Start();

        public void EndStep(int batchImages)
        {
            training.Stop();
            images += batchImages;
            steps++;
        }

        public TimeSpan SinceReport => total.Elapsed - lastReport;
        public void MarkReported() => lastReport = total.Elapsed;

        public double ImagesPerSecond => training.Elapsed.TotalSeconds > 0 ? images / training.Elapsed.TotalSeconds : 0;

        public double? Eta(long step, long budget) =>
            steps == 0 ? null : Math.Max(0, budget - step) * (training.Elapsed.TotalSeconds / steps);
    }
}
