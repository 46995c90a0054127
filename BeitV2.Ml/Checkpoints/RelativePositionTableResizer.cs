using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>TEMPORARY (replaced by the misc branch).</summary>
public static class RelativePositionTableResizer
{
    public static Tensor Resize(Tensor table, (int H, int W) src, (int H, int W) dst) =>
        src == dst ? table.clone() : throw new NotImplementedException();
}
