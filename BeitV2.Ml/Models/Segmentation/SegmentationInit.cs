using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>
/// From-scratch initialisation of the segmentation model as the reference builds it (irrelevant
/// once a checkpoint is loaded; it decides where a head trained from a ViT checkpoint starts).
/// </summary>
/// <remarks>
/// Backbone (beit.py <c>init_weights</c>, which mmseg 0.11's EncoderDecoder calls after
/// construction): Linear weights trunc_normal(std 0.02, bounds ±2), biases 0, LayerNorm 1/0,
/// cls_token / pos_embed trunc_normal(0.02). Because <c>init_weights</c> re-draws every Linear after
/// the constructor's <c>fix_init_weight</c>, the effective init has no 1/sqrt(2k) rescaling. The
/// ConvTranspose2d and BatchNorm of the necks keep the framework defaults.
/// trunc_normal uses <see cref="TruncatedNormal"/> (TorchSharp's own is broken).
/// Heads (mmcv 1.3 ConvModule / mmseg 0.11 BaseDecodeHead): conv kaiming_normal (fan_out, ReLU gain),
/// BatchNorm 1/0, conv_seg normal(0, 0.01) with zero bias.
/// </remarks>
internal static class SegmentationInit
{
    public static void InitBackbone(BeitSegmentationBackbone backbone)
    {
        using var _ = no_grad();
        foreach (var (_, m) in backbone.named_modules())
        {
            if (m is Linear lin)
            {
                TruncatedNormal.Fill_(lin.weight!, 0, 0.02, -2, 2);
                if (lin.bias is not null) nn.init.zeros_(lin.bias);
            }
        }
        TruncatedNormal.Fill_(backbone.get_parameter("cls_token")!, 0, 0.02, -2, 2);
        if (backbone.get_parameter("pos_embed") is { } pos) TruncatedNormal.Fill_(pos, 0, 0.02, -2, 2);
    }

    /// <summary>kaiming_init(mode='fan_out', nonlinearity='relu', distribution='normal'): std = sqrt(2 / fan_out).</summary>
    public static void InitConvModule(Conv2d conv)
    {
        using var _ = no_grad();
        var w = conv.weight!;
        var fanOut = w.shape[0] * w.shape[2] * w.shape[3];
        nn.init.normal_(w, 0, Math.Sqrt(2.0 / fanOut));
        if (conv.bias is not null) nn.init.zeros_(conv.bias);
    }

    /// <summary>normal_init(conv_seg, mean=0, std=0.01), bias 0.</summary>
    public static void InitConvSeg(Conv2d convSeg)
    {
        using var _ = no_grad();
        nn.init.normal_(convSeg.weight!, 0, 0.01);
        if (convSeg.bias is not null) nn.init.zeros_(convSeg.bias);
    }
}
