namespace BeitV2.Ml.Domain;

/// <summary>The inverse of a symmetric positive-definite matrix by its Cholesky factor (A = LLᵀ, A⁻¹ = L⁻ᵀL⁻¹).</summary>
public static class SymmetricInverse
{
    /// <param name="a">p×p, row-major, symmetric positive definite (a shrunk covariance is).</param>
    /// <exception cref="ArgumentException">not square, or not positive definite.</exception>
    public static double[] Invert(double[] a, int p)
    {
        if (a.Length != p * p) throw new ArgumentException($"Expected {p}x{p} values, got {a.Length}.", nameof(a));
        // L, lower triangle.
        var l = new double[p * p];
        for (var i = 0; i < p; i++)
            for (var j = 0; j <= i; j++)
            {
                var sum = a[i * p + j];
                for (var k = 0; k < j; k++) sum -= l[i * p + k] * l[j * p + k];
                if (i == j)
                {
                    if (!(sum > 0)) throw new ArgumentException("The matrix is not positive definite.", nameof(a));
                    l[i * p + i] = Math.Sqrt(sum);
                }
                else l[i * p + j] = sum / l[j * p + j];
            }
        // M = L⁻¹ (lower triangular), by forward substitution column by column.
        var m = new double[p * p];
        for (var col = 0; col < p; col++)
        {
            m[col * p + col] = 1 / l[col * p + col];
            for (var i = col + 1; i < p; i++)
            {
                double sum = 0;
                for (var k = col; k < i; k++) sum -= l[i * p + k] * m[k * p + col];
                m[i * p + col] = sum / l[i * p + i];
            }
        }
        // A⁻¹ = MᵀM.
        var inv = new double[p * p];
        for (var i = 0; i < p; i++)
            for (var j = i; j < p; j++)
            {
                double sum = 0;
                for (var k = j; k < p; k++) sum += m[k * p + i] * m[k * p + j];
                inv[i * p + j] = sum;
                inv[j * p + i] = sum;
            }
        return inv;
    }
}
