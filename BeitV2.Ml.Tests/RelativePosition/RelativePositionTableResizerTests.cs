using BeitV2.Ml.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.RelativePosition;

/// <summary>
/// No SciPy is available offline here, so there is no golden vector from interp2d. Instead the tests
/// pin down the spline by its defining properties: it interpolates, it has no knot at x[1] and
/// x[m−2] (not-a-knot, FITPACK's s=0 knot placement), it reproduces cubics exactly, and it is
/// clamped outside the sample range. A C² cubic spline with those properties is unique, so these
/// checks identify interp2d's result up to rounding.
/// </summary>
public class RelativePositionTableResizerTests
{
    private static readonly double[] NonUniformKnots = [-7.5, -5.0, -4.2, -2.0, -0.5, 0.0, 0.3, 1.9, 2.0, 4.4, 8.0];

    private static double Cubic(double x) => 0.7 - 1.3 * x + 0.21 * x * x - 0.037 * x * x * x;

    [Fact]
    public void SplineReproducesCubicPolynomials()
    {
        foreach (var knots in new[] { NonUniformKnots, RelativePositionTableResizer.GeometricSamplePositions(27, 63) })
        {
            var values = knots.Select(Cubic).ToArray();
            var targets = Enumerable.Range(0, 101).Select(i => knots[0] + (knots[^1] - knots[0]) * i / 100.0).ToArray();
            var got = NotAKnotCubicSpline.Interpolate(knots, values, targets);
            double scale = values.Max(Math.Abs);
            for (int k = 0; k < targets.Length; k++)
                Assert.True(Math.Abs(got[k] - Cubic(targets[k])) <= 1e-10 * scale,
                    $"t={targets[k]}: {got[k]} vs {Cubic(targets[k])}");
        }
    }

    [Fact]
    public void SplineInterpolatesAndHasNoKnotAtSecondAndPenultimateSample()
    {
        var knots = NonUniformKnots;
        int m = knots.Length;
        var w = NotAKnotCubicSpline.InterpolationMatrix(knots, knots);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++)
                Assert.Equal(i == j ? 1.0 : 0.0, w[i, j], 12);

        // Arbitrary (non-polynomial) data: on [x0, x2] and on [x_{m-3}, x_{m-1}] the spline must be a
        // single cubic, so the 4th divided difference of 5 points there vanishes.
        var rng = new Random(3);
        var values = knots.Select(_ => rng.NextDouble() * 2 - 1).ToArray();
        foreach (var (a, b) in new[] { (knots[0], knots[2]), (knots[m - 3], knots[m - 1]) })
        {
            var xs = Enumerable.Range(0, 5).Select(i => a + (b - a) * (0.05 + 0.225 * i)).ToArray();
            var ys = NotAKnotCubicSpline.Interpolate(knots, values, xs);
            Assert.True(Math.Abs(DividedDifference(xs, ys)) < 1e-10, $"4th divided difference on [{a}, {b}] is not zero");
        }

        // ... while an interior interval pair does carry a knot (otherwise the test above proves nothing).
        var inner = Enumerable.Range(0, 5).Select(i => knots[3] + (knots[5] - knots[3]) * (0.05 + 0.225 * i)).ToArray();
        Assert.True(Math.Abs(DividedDifference(inner, NotAKnotCubicSpline.Interpolate(knots, values, inner))) > 1e-6);
    }

    [Fact]
    public void SplineIsClampedOutsideTheSamples()
    {
        var knots = NonUniformKnots;
        var values = knots.Select(Cubic).ToArray();
        var got = NotAKnotCubicSpline.Interpolate(knots, values, [-100.0, -7.5, 8.0, 9.0]);
        Assert.Equal(values[0], got[0], 12);
        Assert.Equal(values[0], got[1], 12);
        Assert.Equal(values[^1], got[2], 12);
        Assert.Equal(values[^1], got[3], 12);
    }

    /// <summary>
    /// Golden values from running the reference's bisection and <c>dis</c> loop verbatim in plain
    /// Python 3.11 (no SciPy/NumPy involved), printed with repr(): q and the largest offset dis[-1].
    /// </summary>
    [Theory]
    [InlineData(27, 63, 1.1349178123474122, 31.000181806480445)]   // 14 → 32 window
    [InlineData(7, 15, 1.49999906539917, 4.749996261597554)]       // 4 → 8: q hits the 1.5 bound
    [InlineData(27, 13, 1.0100009346008303, 13.809406493744058)]   // 14 → 7: q hits the 1.01 bound
    public void GeometricGridMatchesPythonBisection(int srcSize, int dstSize, double q, double largest)
    {
        Assert.Equal(q, RelativePositionTableResizer.GeometricRatio(srcSize, dstSize));

        var x = RelativePositionTableResizer.GeometricSamplePositions(srcSize, dstSize);
        int n = srcSize / 2;
        Assert.Equal(srcSize, x.Length);
        Assert.Equal(0.0, x[n]);
        Assert.Equal(1.0, x[n + 1]);
        Assert.Equal(1.0 + q, x[n + 2], 12);
        Assert.Equal(largest, x[^1], 12);
        for (int i = 0; i < srcSize; i++) Assert.Equal(-x[srcSize - 1 - i], x[i]);

        int t = dstSize / 2;
        Assert.Equal(Enumerable.Range(-t, dstSize).Select(i => (double)i), RelativePositionTableResizer.TargetPositions(dstSize));
    }

    [Fact]
    public void SameWindowReturnsIdenticalCopy()
    {
        using var table = torch.randn(52, 4, generator: new Generator(5));
        using var resized = RelativePositionTableResizer.Resize(table, (4, 4), (4, 4));
        Assert.NotSame(table, resized);
        Assert.Equal(table.data<float>().ToArray(), resized.data<float>().ToArray());
    }

    [Theory]
    [InlineData(14, 32, 732, 3972)]
    [InlineData(14, 7, 732, 172)]
    [InlineData(4, 8, 52, 228)]
    public void ShapesAndExtraTokenRows(int src, int dst, int srcRows, int dstRows)
    {
        foreach (var mode in new[] { RelativeTableInterpolation.UnilmCubic, RelativeTableInterpolation.TimmLinear })
        {
            using var table = torch.randn(srcRows, 12, generator: new Generator(9));
            using var resized = RelativePositionTableResizer.Resize(table, (src, src), (dst, dst), mode);
            Assert.Equal(new long[] { dstRows, 12 }, resized.shape);
            Assert.Equal(ScalarType.Float32, resized.dtype);
            using var srcExtra = table.narrow(0, srcRows - 3, 3);
            using var dstExtra = resized.narrow(0, dstRows - 3, 3);
            Assert.Equal(srcExtra.data<float>().ToArray(), dstExtra.data<float>().ToArray());
        }
    }

    /// <summary>
    /// A table sampled from a bicubic polynomial on the geometric grid must come back as that polynomial
    /// at the integer targets (evaluated at the clamped position where a target lies outside the grid;
    /// 4 → 8 has targets up to 7 but samples only up to 1 + 1.5 + 1.5² = 4.75).
    /// </summary>
    [Theory]
    [InlineData(14, 32)]
    [InlineData(14, 7)]
    [InlineData(4, 8)]
    [InlineData(7, 12)]
    public void BicubicPolynomialIsReproduced(int src, int dst)
    {
        int srcSize = 2 * src - 1, dstSize = 2 * dst - 1;
        var x = RelativePositionTableResizer.GeometricSamplePositions(srcSize, dstSize);
        var t = RelativePositionTableResizer.TargetPositions(dstSize);
        double s = x[^1];
        var rng = new Random(11);
        var coef = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 16).Select(_ => rng.NextDouble() * 2 - 1).ToArray()).ToArray();
        double P(int head, double px, double py)
        {
            double u = px / s, v = py / s, sum = 0; // scaled so values stay O(1)
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    sum += coef[head][4 * i + j] * Math.Pow(u, i) * Math.Pow(v, j);
            return sum;
        }

        // Row index = y offset, column index = x offset (the table's row-major (dy, dx) layout).
        // Stored as float32 like a real checkpoint; that rounding (~6e-8 relative) is what the
        // tolerance below has to absorb, the double-precision resize itself is exact to ~1e-12.
        var data = new float[(srcSize * srcSize + 3) * 2];
        for (int r = 0; r < srcSize; r++)
            for (int c = 0; c < srcSize; c++)
                for (int h = 0; h < 2; h++)
                    data[(r * srcSize + c) * 2 + h] = (float)P(h, x[c], x[r]);
        using var table = torch.tensor(data, new long[] { srcSize * srcSize + 3, 2 });

        using var resized = RelativePositionTableResizer.Resize(table, (src, src), (dst, dst));
        var got = resized.data<float>().ToArray();
        double worst = 0;
        for (int r = 0; r < dstSize; r++)
            for (int c = 0; c < dstSize; c++)
                for (int h = 0; h < 2; h++)
                {
                    double expected = P(h, Math.Clamp(t[c], x[0], x[^1]), Math.Clamp(t[r], x[0], x[^1]));
                    worst = Math.Max(worst, Math.Abs(got[(r * dstSize + c) * 2 + h] - expected) / Math.Max(1, Math.Abs(expected)));
                }

        Assert.True(worst < 1e-5, $"worst relative error {worst}");
    }

    [Fact]
    public void TimmLinearReproducesBilinearFunctions()
    {
        int srcSize = 27, dstSize = 63;
        var x = RelativePositionTableResizer.GeometricSamplePositions(srcSize, dstSize);
        var t = RelativePositionTableResizer.TargetPositions(dstSize);
        static double P(double px, double py) => 0.5 - 0.02 * px + 0.03 * py + 0.001 * px * py;
        var data = new double[srcSize * srcSize + 3];
        for (int r = 0; r < srcSize; r++)
            for (int c = 0; c < srcSize; c++)
                data[r * srcSize + c] = P(x[c], x[r]);
        using var table = torch.tensor(data, new long[] { data.Length, 1 });
        using var resized = RelativePositionTableResizer.Resize(table, (14, 14), (32, 32), RelativeTableInterpolation.TimmLinear);
        var got = resized.data<float>().ToArray();
        for (int r = 0; r < dstSize; r++)
            for (int c = 0; c < dstSize; c++)
                Assert.Equal(P(Math.Clamp(t[c], x[0], x[^1]), Math.Clamp(t[r], x[0], x[^1])), got[r * dstSize + c], 5);
    }

    [Fact]
    public void CubicDiffersFromLinearOnCurvedData()
    {
        using var table = torch.randn(732, 2, generator: new Generator(1));
        using var cubic = RelativePositionTableResizer.Resize(table, (14, 14), (32, 32));
        using var linear = RelativePositionTableResizer.Resize(table, (14, 14), (32, 32), RelativeTableInterpolation.TimmLinear);
        using var diff = (cubic - linear).abs().max();
        Assert.True(diff.item<float>() > 1e-3);
    }

    [Fact]
    public void RejectsUnsupportedInput()
    {
        using var table = torch.zeros(732, 2);
        Assert.Throws<NotSupportedException>(() => RelativePositionTableResizer.Resize(table, (14, 14), (32, 16)));
        Assert.Throws<NotSupportedException>(() => RelativePositionTableResizer.Resize(table, (14, 12), (32, 32)));
        Assert.Throws<ArgumentException>(() => RelativePositionTableResizer.Resize(table, (13, 13), (32, 32)));
        using var flat = torch.zeros(732);
        Assert.Throws<ArgumentException>(() => RelativePositionTableResizer.Resize(flat, (14, 14), (32, 32)));
        using var ints = torch.zeros(732, 2, ScalarType.Int64);
        Assert.Throws<ArgumentException>(() => RelativePositionTableResizer.Resize(ints, (14, 14), (32, 32)));
    }

    private static double DividedDifference(double[] xs, double[] ys)
    {
        var d = (double[])ys.Clone();
        for (int level = 1; level < xs.Length; level++)
            for (int i = xs.Length - 1; i >= level; i--)
                d[i] = (d[i] - d[i - 1]) / (xs[i] - xs[i - level]);
        return d[^1];
    }
}
