using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// The <c>relative_position_index</c> buffer of BEiT attention: for a window of Wh×Ww patches plus
/// one [CLS] token, entry [q, k] is the row of the relative position bias table used for query token
/// q and key token k. Patch pairs use the (2Wh−1)(2Ww−1) relative offsets; the last three table rows
/// are [CLS]→patch (row 0), patch→[CLS] (column 0) and [CLS]→[CLS] ([0, 0]).
/// </summary>
public static class RelativePositionIndex
{
    /// <summary>Number of table rows for a window: (2Wh−1)(2Ww−1) + 3.</summary>
    public static int TableRows(int windowHeight, int windowWidth)
    {
        Validate(windowHeight, windowWidth);
        return (2 * windowHeight - 1) * (2 * windowWidth - 1) + 3;
    }

    /// <summary>
    /// Builds the index as a row-major array of (N+1)² entries, N = Wh·Ww, rows = query tokens.
    /// </summary>
    public static long[] Build(int windowHeight, int windowWidth)
    {
        int rows = TableRows(windowHeight, windowWidth);
        int n = windowHeight * windowWidth;
        int t = n + 1;
        if ((long)t * t > Array.MaxLength)
            throw new ArgumentException($"A {windowHeight}×{windowWidth} window gives an index too large for one array.");
        var index = new long[t * t];
        int span = 2 * windowWidth - 1;
        for (int i = 0; i < n; i++)
        {
            int hi = i / windowWidth, wi = i % windowWidth;
            for (int j = 0; j < n; j++)
            {
                int hj = j / windowWidth, wj = j % windowWidth;
                index[(i + 1) * t + (j + 1)] = (hi - hj + windowHeight - 1) * span + (wi - wj + windowWidth - 1);
            }
        }

        for (int k = 1; k < t; k++)
        {
            index[k] = rows - 3;      // [CLS] query, patch key
            index[k * t] = rows - 2;  // patch query, [CLS] key
        }

        index[0] = rows - 1;          // [CLS] to [CLS]
        return index;
    }

    /// <summary>Builds the index as an int64 tensor of shape (N+1, N+1).</summary>
    public static Tensor BuildTensor(int windowHeight, int windowWidth, Device? device = null)
    {
        long t = (long)windowHeight * windowWidth + 1;
        return torch.tensor(Build(windowHeight, windowWidth), new[] { t, t }, device: device);
    }

    private static void Validate(int windowHeight, int windowWidth)
    {
        // The upper bound only keeps (2W-1)² and N = Wh·Ww within int; real windows are far smaller.
        if (windowHeight <= 0 || windowWidth <= 0 || windowHeight > 10000 || windowWidth > 10000)
            throw new ArgumentException($"The window must be between 1×1 and 10000×10000, got {windowHeight}×{windowWidth}.");
    }
}
