namespace BeitV2.Ml.Training;

/// <summary>A per-iteration value schedule (learning rate, before each group's <c>lr_scale</c>).</summary>
public interface ILrSchedule
{
    /// <summary>Number of iterations the schedule covers.</summary>
    int Length { get; }

    /// <summary>The value at iteration <paramref name="step"/> (0-based); steps past the end give the last value.</summary>
    double this[long step] { get; }
}

/// <summary>
/// unilm <c>utils.cosine_scheduler</c>, value for value: <c>warmup_iters</c> = warmup_epochs ×
/// niter_per_ep (or <c>warmup_steps</c> when &gt; 0) values <c>np.linspace(start_warmup_value, base,
/// warmup_iters)</c> (both end points included), then for i = 0..K−1 with K = total − warmup_iters:
/// <c>final + 0.5·(base − final)·(1 + cos(π·i/K))</c>. The total is epochs × niter_per_ep.
/// </summary>
/// <remarks>
/// One deliberate difference: the reference builds the warmup only when <c>warmup_epochs &gt; 0</c>, so
/// <c>warmup_steps &gt; 0</c> with zero warmup epochs fails its length assertion; here warmup steps
/// alone are honoured.
/// </remarks>
public sealed class CosineSchedule : ILrSchedule
{
    private readonly double[] values;

    public CosineSchedule(double baseValue, double finalValue, int epochs, int itersPerEpoch, int warmupEpochs = 0,
        double startWarmupValue = 0, int warmupSteps = -1)
        : this(baseValue, finalValue, checked(epochs * itersPerEpoch), warmupSteps > 0 ? warmupSteps : checked(warmupEpochs * itersPerEpoch),
            startWarmupValue, validate: epochs >= 0 && itersPerEpoch >= 0 && warmupEpochs >= 0)
    {
    }

    /// <summary>The schedule over <paramref name="totalIters"/> iterations of which the first <paramref name="warmupIters"/> warm up.</summary>
    public static CosineSchedule FromIterations(double baseValue, double finalValue, int totalIters, int warmupIters, double startWarmupValue = 0) =>
        new(baseValue, finalValue, totalIters, warmupIters, startWarmupValue, validate: true);

    private CosineSchedule(double baseValue, double finalValue, int totalIters, int warmupIters, double startWarmupValue, bool validate)
    {
        if (!validate) throw new ArgumentException("epochs, iterations per epoch and warmup epochs must be non-negative.");
        if (totalIters < 0) throw new ArgumentException($"The schedule length must be non-negative, got {totalIters}.");
        if (warmupIters < 0 || warmupIters > totalIters)
            throw new ArgumentException($"Warmup iterations ({warmupIters}) must be in 0..{totalIters} (the schedule length).");
        BaseValue = baseValue;
        FinalValue = finalValue;
        WarmupIterations = warmupIters;
        values = new double[totalIters];
        // np.linspace: y = arange(n) * ((stop − start)/(n − 1)) + start, last value set to stop exactly.
        if (warmupIters == 1) values[0] = startWarmupValue;
        else if (warmupIters > 1)
        {
            var step = (baseValue - startWarmupValue) / (warmupIters - 1);
            for (var i = 0; i < warmupIters; i++) values[i] = i * step + startWarmupValue;
            values[warmupIters - 1] = baseValue;
        }
        var k = totalIters - warmupIters;
        for (var i = 0; i < k; i++)
            values[warmupIters + i] = finalValue + 0.5 * (baseValue - finalValue) * (1 + Math.Cos(Math.PI * i / k));
    }

    public double BaseValue { get; }
    public double FinalValue { get; }
    public int WarmupIterations { get; }
    public int Length => values.Length;
    public IReadOnlyList<double> Values => values;
    public double this[long step] => values.Length == 0 ? FinalValue : values[(int)Math.Clamp(step, 0, values.Length - 1)];
}

/// <summary>
/// mmcv 1.3 <c>PolyLrUpdaterHook</c> (by_epoch False) with linear warmup, as the BEiT v2 segmentation
/// configs use it (power 1.0, min_lr 0, warmup 1500 iterations from ratio 1e-6):
/// regular(it) = (base − min)·(1 − it/max_iters)^power + min; for it &lt; warmup_iters the value is
/// regular(it)·(1 − k) with k = (1 − it/warmup_iters)·(1 − warmup_ratio).
/// </summary>
/// <remarks>
/// mmcv applies this to each group's own initial lr (base·scale with layer decay); here the schedule
/// gives the value for the base lr and the optimiser multiplies by the group's scale. Both agree
/// whenever min_lr is 0 (the reference setting).
/// </remarks>
public sealed class PolySchedule : ILrSchedule
{
    public PolySchedule(double baseValue, int maxIters, double power = 1.0, double minValue = 0, int warmupIters = 0, double warmupRatio = 1e-6)
    {
        if (maxIters <= 0) throw new ArgumentException($"max_iters must be positive, got {maxIters}.");
        if (warmupIters < 0) throw new ArgumentException($"warmup_iters must be non-negative, got {warmupIters}.");
        if (warmupRatio is <= 0 or > 1) throw new ArgumentException($"warmup_ratio must be in (0, 1], got {warmupRatio}.");
        BaseValue = baseValue;
        Length = maxIters;
        Power = power;
        MinValue = minValue;
        WarmupIterations = warmupIters;
        WarmupRatio = warmupRatio;
    }

    public double BaseValue { get; }
    public int Length { get; }
    public double Power { get; }
    public double MinValue { get; }
    public int WarmupIterations { get; }
    public double WarmupRatio { get; }

    public double this[long step]
    {
        get
        {
            var it = Math.Clamp(step, 0, Length - 1);
            var regular = (BaseValue - MinValue) * Math.Pow(1 - (double)it / Length, Power) + MinValue;
            if (it >= WarmupIterations) return regular;
            var k = (1 - (double)it / WarmupIterations) * (1 - WarmupRatio);
            return regular * (1 - k);
        }
    }
}
