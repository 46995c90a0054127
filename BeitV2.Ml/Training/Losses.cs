using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Losses of the trainers.</summary>
public static class Losses
{
    /// <summary>
    /// timm LabelSmoothingCrossEntropy: mean over the batch of (1 − s)·nll + s·mean_k(−log p_k)
    /// (equal to PyTorch's cross_entropy with label_smoothing = s).
    /// </summary>
    public static Tensor LabelSmoothingCrossEntropy(Tensor logits, Tensor target, double smoothing)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits, -1);
        var nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1);
        var smooth = -logp.mean(new long[] { -1 });
        var loss = ((1 - smoothing) * nll + smoothing * smooth).mean();
        return loss.MoveToOuterDisposeScope();
    }
}
