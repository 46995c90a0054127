using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>
/// The fixtures' comparison rule: integers and booleans exactly; floats elementwise
/// |got − ref| ≤ atol + rtol·|ref|, at the README's strict level
/// (rtol = 1e-5, atol = 1e-5·max(1, max|ref|)) unless the descriptor gives its own strict values.
/// </summary>
public static class TensorAssert
{
    public const double StrictRtol = 1e-5;

    public static void Matches(FixtureIo io, Tensor expected, Tensor actual)
    {
        using var scope = NewDisposeScope();
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{io.Name}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        var got = actual.detach().cpu();
        var want = expected.cpu();
        if (io.Exact || !want.is_floating_point())
        {
            var same = want.to_type(int64).eq(got.to_type(int64));
            var bad = (int)same.logical_not().sum().item<long>();
            Assert.True(bad == 0, $"{io.Name}: {bad} of {want.numel()} integer entries differ (exact match required)");
            return;
        }
        var refMaxAbs = want.numel() == 0 ? 0.0 : want.abs().max().item<float>();
        var atol = io.StrictAtol ?? StrictRtol * Math.Max(1.0, refMaxAbs);
        var rtol = io.StrictRtol ?? StrictRtol;
        var w = want.to_type(float64);
        var g = got.to_type(float64);
        var diff = (g - w).abs();
        var allowed = w.abs() * rtol + atol;
        var violations = (int)diff.gt(allowed).sum().item<long>();
        var maxDiff = diff.numel() == 0 ? 0 : diff.max().item<double>();
        Assert.True(violations == 0 && !g.isnan().any().item<bool>(),
            $"{io.Name}: {violations} of {w.numel()} elements outside atol {atol:g3} + rtol {rtol:g3}·|ref| (max |diff| {maxDiff:g3})");
    }
}
