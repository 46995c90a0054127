using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>
/// mmcv's <c>ConvModule</c> as the BEiT segmentation heads configure it (norm_cfg SyncBN, act ReLU):
/// a bias-free Conv2d (<c>conv</c>), BatchNorm2d (<c>bn</c>, eps 1e-5, momentum 0.1), ReLU.
/// </summary>
public sealed class ConvModule : ExplicitModule<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly BatchNorm2d bn;

    public ConvModule(long inChannels, long outChannels, long kernelSize, long padding = 0) : base(nameof(ConvModule))
    {
        conv = nn.Conv2d(inChannels, outChannels, kernelSize, padding: padding, bias: false);
        bn = nn.BatchNorm2d(outChannels);
        register_module("conv", conv);
        register_module("bn", bn);
        SegmentationInit.InitConvModule(conv);
    }

    internal Conv2d Conv => conv;
    internal BatchNorm2d Bn => bn;

    public override Tensor forward(Tensor x)
    {
        if (Autocast.IsEnabled)
        {
            // The convolution in low precision, BatchNorm (statistics) in float32.
            using var scope = NewDisposeScope();
            return nn.functional.relu(bn.forward(Autocast.Float32(Autocast.Conv(conv, x)))).MoveToOuterDisposeScope();
        }
        using var c = conv.forward(x);
        using var n = bn.forward(c);
        return nn.functional.relu(n);
    }
}
