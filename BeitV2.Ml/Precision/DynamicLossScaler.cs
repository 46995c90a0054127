using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Precision;

/// <summary>The state of a <see cref="DynamicLossScaler"/> as training checkpoints keep it.</summary>
public sealed record LossScalerState(double Scale, int GrowthTracker);

/// <summary>
/// Dynamic loss scaling for float16 training, the algorithm of PyTorch's <c>torch.amp.GradScaler</c>
/// (TorchSharp 0.107 has none): the loss is multiplied by <see cref="Scale"/> before backward so
/// small float16 gradients do not flush to zero; afterwards the gradients are divided by it again
/// (<see cref="UnscaleAndCheck"/>). If any gradient is inf or NaN the optimiser step is skipped and
/// the scale is multiplied by <see cref="BackoffFactor"/>; after <see cref="GrowthInterval"/>
/// consecutive finite steps it is multiplied by <see cref="GrowthFactor"/>.
/// </summary>
/// <remarks>
/// bfloat16 has float32's exponent range and needs no scaling; the trainers use a scaler only for
/// <see cref="ComputePrecision.Fp16"/>. Gradient clipping must see unscaled gradients, so the trainer
/// clips after <see cref="UnscaleAndCheck"/>, as PyTorch's recipe does.
/// </remarks>
public sealed class DynamicLossScaler
{
    public DynamicLossScaler(double initialScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5, int growthInterval = 2000)
    {
        if (!(initialScale > 0) || double.IsInfinity(initialScale)) throw new ArgumentOutOfRangeException(nameof(initialScale), "The initial scale must be positive and finite.");
        if (!(growthFactor > 1)) throw new ArgumentOutOfRangeException(nameof(growthFactor), "The growth factor must be above 1.");
        if (!(backoffFactor is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(backoffFactor), "The backoff factor must be in (0, 1).");
        if (growthInterval < 1) throw new ArgumentOutOfRangeException(nameof(growthInterval), "The growth interval must be at least 1.");
        Scale = initialScale;
        GrowthFactor = growthFactor;
        BackoffFactor = backoffFactor;
        GrowthInterval = growthInterval;
    }

    /// <summary>The current loss scale.</summary>
    public double Scale { get; private set; }
    public double GrowthFactor { get; }
    public double BackoffFactor { get; }
    public int GrowthInterval { get; }
    /// <summary>Consecutive finite steps since the scale last changed.</summary>
    public int GrowthTracker { get; private set; }
    /// <summary>Steps skipped (non-finite gradients) since this scaler was made.</summary>
    public long SkippedSteps { get; private set; }
    /// <summary>Steps skipped in a row, up to the last <see cref="Update"/>.</summary>
    public int ConsecutiveSkips { get; private set; }

    /// <summary>loss × scale (a new tensor; backward through it gives scaled gradients).</summary>
    public Tensor ScaleLoss(Tensor loss) => loss * Scale;

    /// <summary>
    /// Divides every gradient by the scale, in place, and reports whether all of them are finite
    /// (one device synchronisation for the whole set). Parameters without gradient are ignored.
    /// </summary>
    public bool UnscaleAndCheck(IEnumerable<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var inverse = 1.0 / Scale;
        var flags = new List<Tensor>();
        foreach (var p in parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            g.mul_(inverse);
            flags.Add(g.isfinite().all());
        }
        return flags.Count == 0 || stack(flags).all().item<bool>();
    }

    /// <summary>Adjusts the scale after a step: back off (and count a skip) when the gradients were not finite, grow after enough finite steps.</summary>
    public void Update(bool gradientsFinite)
    {
        if (!gradientsFinite)
        {
            Scale *= BackoffFactor;
            GrowthTracker = 0;
            SkippedSteps++;
            ConsecutiveSkips++;
            return;
        }
        ConsecutiveSkips = 0;
        if (++GrowthTracker >= GrowthInterval)
        {
            var grown = Scale * GrowthFactor;
            if (!double.IsInfinity(grown)) Scale = grown;
            GrowthTracker = 0;
        }
    }

    public LossScalerState State => new(Scale, GrowthTracker);

    /// <summary>Continues from a checkpointed state.</summary>
    public void Restore(LossScalerState state)
    {
        if (!(state.Scale > 0) || double.IsInfinity(state.Scale)) throw new ArgumentException($"Invalid saved loss scale {state.Scale}.", nameof(state));
        Scale = state.Scale;
        GrowthTracker = Math.Max(0, state.GrowthTracker);
        ConsecutiveSkips = 0;
    }
}
