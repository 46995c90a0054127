using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// A frozen model whose patch features VQ-KD learns to reconstruct. Implementations own their
/// scaling layer, so the tokenizer hands over its [−1, 1] input exactly as the reference does.
/// </summary>
public interface IVqkdTeacher : IDisposable
{
    /// <summary>"clip", "dino" or "beitv2".</summary>
    string Kind { get; }

    /// <summary>Width of each target vector (512 for CLIP ViT-B/16, 768 for DINO ViT-B/16).</summary>
    int OutputDim { get; }

    /// <summary>The teacher as a module (for device moves and eval mode).</summary>
    nn.Module Module { get; }

    /// <summary>The teacher's input: its scaling layer applied to the [−1, 1] images.</summary>
    Tensor Scale(Tensor imagesPre);

    /// <summary>(B, N, OutputDim) regression targets for the [−1, 1] images, without gradient.</summary>
    Tensor GetRegressTarget(Tensor imagesPre);
}
