using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// One of our own BEiT backbones as the VQ-KD teacher ("beitv2"): its per-patch output features
/// (fc_norm of each patch token with mean pooling, else the normed patch tokens) are the targets.
/// Our backbones take ImageNet-normalised images, so the [−1, 1] tokenizer input is rescaled with
/// the ImageNet statistics, as the reference does for DINO.
/// </summary>
public sealed class BackboneTeacher : IVqkdTeacher
{
    private readonly ScalingLayer scaling = ScalingLayer.ForImageNet();

    public BackboneTeacher(BeitVisionTransformer backbone)
    {
        Backbone = backbone;
        backbone.eval();
        foreach (var p in backbone.parameters()) p.requires_grad = false;
    }

    public BeitVisionTransformer Backbone { get; }
    public string Kind => "beitv2";
    public int OutputDim => Backbone.Config.EmbedDim;
    public nn.Module Module => Backbone;

    public Tensor Scale(Tensor imagesPre) => scaling.forward(imagesPre);

    public Tensor GetRegressTarget(Tensor imagesPre)
    {
        using var _ = no_grad();
        using var scaled = Scale(imagesPre);
        return Backbone.ForwardPatchTokens(scaled);
    }

    public void Dispose()
    {
        Backbone.Dispose();
        scaling.Dispose();
    }
}
