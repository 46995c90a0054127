using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Data;

/// <summary>
/// One batch as CPU tensors. The batch owns its tensors: dispose it (<c>using var batch = ...</c>)
/// when done, after moving or copying what must outlive it. Tensors taken out with
/// <c>.to(device)</c> are new tensors the caller disposes separately.
/// </summary>
public sealed class TrainingBatch : IDisposable
{
    internal TrainingBatch(int epoch, int batchIndex, int[] indices, Tensor images, Tensor labels,
        Tensor? tokenizerImages, Tensor? masks, Tensor? maskedPositions)
    {
        Epoch = epoch;
        BatchIndex = batchIndex;
        Indices = indices;
        Images = images;
        Labels = labels;
        TokenizerImages = tokenizerImages;
        Masks = masks;
        MaskedPositions = maskedPositions;
    }

    /// <summary>The epoch the batch belongs to.</summary>
    public int Epoch { get; }

    /// <summary>Position of the batch in its epoch.</summary>
    public int BatchIndex { get; }

    /// <summary>Dataset index of each sample, in batch order.</summary>
    public int[] Indices { get; }

    /// <summary>Number of samples (B).</summary>
    public int Count => Indices.Length;

    /// <summary>Model input, float32 (B, 3, S, S).</summary>
    public Tensor Images { get; }

    /// <summary>Image labels, int64 (B); -1 for unlabelled samples.</summary>
    public Tensor Labels { get; }

    /// <summary>Tokenizer view for MIM, float32 (B, 3, S2, S2) in [0,1]; null for single-view transforms.</summary>
    public Tensor? TokenizerImages { get; }

    /// <summary>Segmentation targets, int64 (B, S, S) (255 = ignore); null unless the transform makes masks.</summary>
    public Tensor? Masks { get; }

    /// <summary>MIM <c>bool_masked_pos</c>, bool (B, H·W); null unless <see cref="BatchLoaderOptions.Masking"/> is set.</summary>
    public Tensor? MaskedPositions { get; }

    /// <summary>Disposes every tensor of the batch.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
        TokenizerImages?.Dispose();
        Masks?.Dispose();
        MaskedPositions?.Dispose();
    }
}
