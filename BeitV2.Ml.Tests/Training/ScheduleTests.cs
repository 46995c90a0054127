using BeitV2.Ml.Training;

namespace BeitV2.Ml.Tests.Training;

/// <summary>The schedules against values computed by hand from the reference formulas.</summary>
public class ScheduleTests
{
    [Fact]
    public void Cosine_WarmupEpoch_ThenCosine_MatchesUtilsCosineScheduler()
    {
        // base 1, final 0.1, 3 epochs × 2 iterations, 1 warmup epoch:
        // warmup = linspace(0, 1, 2) = [0, 1]; K = 4: 0.1 + 0.45 (1 + cos(π i / 4)).
        var s = new CosineSchedule(1.0, 0.1, epochs: 3, itersPerEpoch: 2, warmupEpochs: 1);
        var expected = new[] { 0.0, 1.0, 1.0, 0.1 + 0.45 * (1 + Math.Sqrt(0.5)), 0.55, 0.1 + 0.45 * (1 - Math.Sqrt(0.5)) };
        Assert.Equal(6, s.Length);
        Assert.Equal(2, s.WarmupIterations);
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], s[i], 12);
        Assert.Equal(0.868198, s[3], 6);
        Assert.Equal(0.231802, s[5], 6);
    }

    [Fact]
    public void Cosine_WarmupIsAnInclusiveLinspace()
    {
        // warmup_steps 3 overrides the epochs: linspace(0, 0.3, 3) = [0, 0.15, 0.3]; then K = 5 cosine values from 0.3.
        var s = new CosineSchedule(0.3, 0.0, epochs: 4, itersPerEpoch: 2, warmupEpochs: 1, warmupSteps: 3);
        Assert.Equal(8, s.Length);
        Assert.Equal(0.0, s[0], 15);
        Assert.Equal(0.15, s[1], 15);
        Assert.Equal(0.3, s[2], 15);
        Assert.Equal(0.3, s[3], 15); // i = 0 of the cosine part is the base value again
        Assert.Equal(0.15 * (1 + Math.Cos(Math.PI * 2 / 5)), s[5], 12);
        Assert.Equal(0.15 * (1 + Math.Cos(Math.PI * 4 / 5)), s[7], 12);
    }

    [Fact]
    public void Cosine_NoWarmup_StartsAtBaseAndNeverReachesFinal()
    {
        var s = new CosineSchedule(2e-4, 1e-5, epochs: 1, itersPerEpoch: 4);
        Assert.Equal(2e-4, s[0], 15);
        Assert.Equal(1e-5 + 0.5 * (2e-4 - 1e-5) * (1 + Math.Cos(Math.PI * 3 / 4)), s[3], 15);
        Assert.True(s[3] > 1e-5);
        Assert.Equal(s[3], s[100]); // past the end: the last value
    }

    [Fact]
    public void Cosine_SingleWarmupIteration_IsTheStartValue()
    {
        var s = new CosineSchedule(1.0, 0.0, epochs: 1, itersPerEpoch: 3, warmupSteps: 1, startWarmupValue: 0.25);
        Assert.Equal(0.25, s[0]);
        Assert.Equal(1.0, s[1]);
        Assert.Equal(0.5, s[2], 12);
    }

    [Fact]
    public void Poly_LinearWarmupFromRatio_ThenPolyDecay()
    {
        var s = new PolySchedule(1.0, maxIters: 10, power: 1.0, minValue: 0, warmupIters: 2, warmupRatio: 1e-6);
        Assert.Equal(1e-6, s[0], 15);                          // regular 1.0 × (1 − (1 − 0)(1 − 1e-6))
        Assert.Equal(0.9 * (1 - 0.5 * (1 - 1e-6)), s[1], 15);  // regular 0.9, k = 0.5 (1 − 1e-6)
        Assert.Equal(0.8, s[2], 15);
        Assert.Equal(0.1, s[9], 15);
        var squared = new PolySchedule(2.0, maxIters: 4, power: 2.0, minValue: 0.5);
        Assert.Equal(1.5 * 0.75 * 0.75 + 0.5, squared[1], 15);
    }
}
