using BeitV2.Ml.Precision;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Precision;

/// <summary>The loss scaler's arithmetic on float32 tensors with hand-set gradients (infinities injected).</summary>
public class DynamicLossScalerTests
{
    private static Parameter Param(params float[] grad)
    {
        var p = new Parameter(zeros(grad.Length));
        p.grad = tensor(grad);
        return p;
    }

    [Fact]
    public void UnscaleAndCheck_DividesEveryGradientByTheScale()
    {
        var scaler = new DynamicLossScaler(initialScale: 8);
        using var a = Param(8, 16, -24);
        using var b = Param(4);
        using var noGrad = new Parameter(zeros(3));
        Assert.True(scaler.UnscaleAndCheck(new[] { a, b, noGrad }));
        Assert.Equal(new[] { 1f, 2f, -3f }, a.grad!.data<float>().ToArray());
        Assert.Equal(new[] { 0.5f }, b.grad!.data<float>().ToArray());
        Assert.Null(noGrad.grad);
    }

    [Theory]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    [InlineData(float.NaN)]
    public void UnscaleAndCheck_ReportsANonFiniteGradientAnywhere(float bad)
    {
        var scaler = new DynamicLossScaler(initialScale: 2);
        using var a = Param(1, 2, 3);
        using var b = Param(4, bad);
        Assert.False(scaler.UnscaleAndCheck(new[] { a, b }));
    }

    [Fact]
    public void ScaleLoss_MultipliesAndKeepsTheGraph()
    {
        var scaler = new DynamicLossScaler(initialScale: 1024);
        using var w = new Parameter(tensor(new[] { 2f }));
        using var loss = (w * 3).sum();
        using var scaled = scaler.ScaleLoss(loss);
        Assert.Equal(6144f, scaled.item<float>());
        scaled.backward();
        Assert.Equal(3072f, w.grad!.item<float>());                 // scaled gradient
        Assert.True(scaler.UnscaleAndCheck(new[] { w }));
        Assert.Equal(3f, w.grad!.item<float>());                    // the true gradient
    }

    [Fact]
    public void Update_BacksOffOnOverflow_AndGrowsAfterTheInterval()
    {
        var scaler = new DynamicLossScaler(initialScale: 1024, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3);
        scaler.Update(false);
        Assert.Equal(512, scaler.Scale);
        Assert.Equal(1, scaler.SkippedSteps);
        Assert.Equal(1, scaler.ConsecutiveSkips);
        scaler.Update(false);
        Assert.Equal(256, scaler.Scale);
        Assert.Equal(2, scaler.ConsecutiveSkips);

        scaler.Update(true);
        scaler.Update(true);
        Assert.Equal(256, scaler.Scale);                             // two finite steps: not yet
        Assert.Equal(2, scaler.GrowthTracker);
        Assert.Equal(0, scaler.ConsecutiveSkips);
        scaler.Update(true);
        Assert.Equal(512, scaler.Scale);                             // the third one grows it
        Assert.Equal(0, scaler.GrowthTracker);

        scaler.Update(true);
        scaler.Update(false);                                        // an overflow resets the growth count
        Assert.Equal(256, scaler.Scale);
        Assert.Equal(0, scaler.GrowthTracker);
        Assert.Equal(3, scaler.SkippedSteps);
    }

    [Fact]
    public void Update_NeverGrowsToInfinity()
    {
        var scaler = new DynamicLossScaler(initialScale: double.MaxValue / 1.5, growthInterval: 1);
        scaler.Update(true);
        Assert.True(double.IsFinite(scaler.Scale));
    }

    [Fact]
    public void State_RoundTrips()
    {
        var scaler = new DynamicLossScaler(initialScale: 64, growthInterval: 10);
        scaler.Update(true);
        scaler.Update(true);
        var state = scaler.State;
        var other = new DynamicLossScaler(growthInterval: 10);
        other.Restore(state);
        Assert.Equal(64, other.Scale);
        Assert.Equal(2, other.GrowthTracker);
        Assert.Throws<ArgumentException>(() => other.Restore(new LossScalerState(0, 0)));
    }

    [Theory]
    [InlineData(0, 2, 0.5, 10)]
    [InlineData(1, 1, 0.5, 10)]
    [InlineData(1, 2, 1, 10)]
    [InlineData(1, 2, 0.5, 0)]
    public void Constructor_RejectsBadSettings(double scale, double growth, double backoff, int interval) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new DynamicLossScaler(scale, growth, backoff, interval));
}
