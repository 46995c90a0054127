using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>TEMPORARY (replaced by the misc branch).</summary>
public static class RelativePositionIndex
{
    public static long[] Build(int wh, int ww)
    {
        int n = wh * ww, t = n + 1;
        long r = (2 * wh - 1) * (2 * ww - 1) + 3;
        var idx = new long[t * t];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            int hi = i / ww, wi = i % ww, hj = j / ww, wj = j % ww;
            idx[(i + 1) * t + (j + 1)] = (hi - hj + wh - 1) * (2 * ww - 1) + (wi - wj + ww - 1);
        }
        for (int j = 1; j < t; j++) idx[j] = r - 3;
        for (int i = 1; i < t; i++) idx[i * t] = r - 2;
        idx[0] = r - 1;
        return idx;
    }
}
