namespace BeitV2.Ml.Masking;

/// <summary>
/// One mask drawn by <see cref="BlockMaskingGenerator"/>, together with how it was built.
/// The build details are not needed for training; they exist so that the generator can be
/// compared statistically with the reference implementation (whose fixture records them).
/// </summary>
public sealed class MaskDraw
{
    internal MaskDraw(bool[] mask, int maskedByBlocks, int blockCount)
    {
        Mask = mask;
        MaskedByBlocks = maskedByBlocks;
        BlockCount = blockCount;
    }

    /// <summary>The mask, row-major over the H×W grid; exactly <c>NumMaskingPatches</c> entries are true.</summary>
    public bool[] Mask { get; }

    /// <summary>
    /// Cells covered by the rectangular blocks before the fix-up step. Less than the target count
    /// when the block phase gave up (ten failed attempts in a row) and random single cells were added.
    /// </summary>
    public int MaskedByBlocks { get; }

    /// <summary>Number of rectangles that were accepted (each added at least one new cell).</summary>
    public int BlockCount { get; }
}
