using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// The per-layer relative position bias of one <see cref="Attention"/>, looked up once for inference
/// instead of in every forward: the gather from the table (index_select of T² rows, permute, copy) costs
/// about 2 ms per ViT-B block at 224 px on two cores, some 7 % of a batch-1 forward.
/// </summary>
/// <remarks>
/// Used under <c>inference_mode</c> only (serving, the parity fixtures): a trainer's no-grad evaluation
/// keeps the per-forward lookup and holds no extra tensors.
/// Valid while the table is unchanged. The table is tiny ((2W−1)²+3 rows), so the cache keeps a copy of it
/// and compares before every use: an optimiser step, a loaded state dict or a device move (a new tensor)
/// all make it recompute, with no invalidation hooks to forget. Only on the CPU (where the comparison is
/// free and the gather is slow; on a GPU the comparison would synchronise every block) and only up to
/// <see cref="MaxElements"/> floats (a 512 px segmentation backbone would need 50 MB per block; there the
/// gather is a small share of the forward anyway).
/// </remarks>
internal sealed class InferenceBiasCache : IDisposable
{
    /// <summary>Largest cached bias, in floats (16 MB); ViT-B at 224 px needs 0.47 M per block.</summary>
    public const long MaxElements = 4L << 20;

    private readonly object gate = new();
    private Tensor? table;
    private Tensor? bias;

    /// <summary>The (1, H, T, T) bias; a fresh handle the caller's dispose scope may dispose.</summary>
    public Tensor Get(nn.Module attention, (int H, int W) window, int numHeads)
    {
        var current = attention.get_parameter(RelativePositionBias.TableName)!;
        long t = window.H * window.W + 1;
        if (!is_inference_mode_enabled() || current.device_type != TorchSharp.DeviceType.CPU || numHeads * t * t > MaxElements)
            return RelativePositionBias.Lookup(attention, window).unsqueeze(0);
        lock (gate)
        {
            if (table is null || bias is null || table.IsInvalid || !SameValues(table, current))
            {
                table?.Dispose();
                bias?.Dispose();
                using (no_grad())
                {
                    table = current.detach().clone().DetachFromDisposeScope();
                    bias = RelativePositionBias.Lookup(attention, window).unsqueeze(0).contiguous().DetachFromDisposeScope();
                }
            }
            return bias.alias();
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            table?.Dispose();
            bias?.Dispose();
            table = bias = null;
        }
    }

    private static bool SameValues(Tensor cached, Tensor current) =>
        cached.dtype == current.dtype && cached.shape.SequenceEqual(current.shape) && cached.allclose(current, rtol: 0, atol: 0);
}
