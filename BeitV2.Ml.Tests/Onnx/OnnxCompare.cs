using BeitV2.Ml.Tests.Parity;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// Comparisons of ONNX Runtime outputs with a reference at the fixtures' strict rule (<see cref="TensorAssert"/>),
/// and how much of the allowance the worst element used (reported by the tests: a share near 1 is a warning).
/// </summary>
public static class OnnxCompare
{
    /// <summary>The strict rule against any reference tensor (e.g. TorchSharp's output): floats within 1e-5·max(1, max|ref|) + 1e-5·|ref|, integers exactly.</summary>
    public static FixtureIo Strict(string name, Tensor reference) =>
        new(name, "output", reference.shape, reference.dtype.ToString(), !reference.is_floating_point(), null, null);

    /// <summary>Asserts <paramref name="actual"/> matches <paramref name="expected"/> under <paramref name="spec"/>; returns how closely.</summary>
    public static Agreement Matches(FixtureIo spec, Tensor expected, Tensor actual)
    {
        TensorAssert.Matches(spec, expected, actual);
        if (spec.Exact || !expected.is_floating_point() || expected.numel() == 0) return Agreement.Exact;
        using var scope = NewDisposeScope();
        var w = expected.detach().cpu().to_type(float64);
        var g = actual.detach().cpu().to_type(float64);
        var atol = spec.StrictAtol ?? TensorAssert.StrictRtol * Math.Max(1.0, w.abs().max().item<double>());
        var rtol = spec.StrictRtol ?? TensorAssert.StrictRtol;
        var diff = (g - w).abs();
        return new Agreement(diff.max().item<double>(), (diff / (w.abs() * rtol + atol)).max().item<double>());
    }

    /// <summary>Asserts under the strict rule against <paramref name="reference"/>.</summary>
    public static Agreement Strictly(string name, Tensor reference, Tensor actual) => Matches(Strict(name, reference), reference, actual);
}

/// <summary>How closely a float output matched: the largest |got − ref| and the worst element's share of its allowance.</summary>
public sealed record Agreement(double MaxAbsDiff, double Share)
{
    /// <summary>Integers (or empty tensors): equal.</summary>
    public static Agreement Exact { get; } = new(0, 0);

    public override string ToString() => this == Exact ? "exact" : $"max |diff| {MaxAbsDiff:0.0e+0} = {Share:F3} of the tolerance";
}
