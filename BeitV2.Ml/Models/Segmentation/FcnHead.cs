using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>
/// mmseg 0.11 <c>FCNHead</c> as the auxiliary head of the BEiT configs (num_convs 1, kernel 3,
/// concat_input False): <c>convs.0</c> ConvModule 3×3 (padding 1) → Dropout2d → <c>conv_seg</c> 1×1.
/// Its input is one feature level chosen by the segmenter (in_index 2).
/// </summary>
public sealed class FcnHead : ExplicitModule<Tensor, Tensor>
{
    private readonly Sequential convs;
    private readonly Dropout2d? dropout;
    private readonly Conv2d convSeg;

    public FcnHead(long inChannels, long channels, long numClasses, double dropoutRatio, int numConvs = 1) : base(nameof(FcnHead))
    {
        if (numConvs < 1) throw new ArgumentException("FCNHead needs at least one conv.", nameof(numConvs));
        var list = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (var i = 0; i < numConvs; i++)
            list.Add((i.ToString(System.Globalization.CultureInfo.InvariantCulture), new ConvModule(i == 0 ? inChannels : channels, channels, 3, padding: 1)));
        convs = nn.Sequential(list);
        register_module("convs", convs);
        convSeg = nn.Conv2d(channels, numClasses, 1);
        register_module("conv_seg", convSeg);
        if (dropoutRatio > 0)
        {
            dropout = nn.Dropout2d(dropoutRatio);
            register_module("dropout", dropout);
        }
        SegmentationInit.InitConvSeg(convSeg);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var output = convs.forward(x);
        if (dropout is not null) output = dropout.forward(output);
        return Autocast.Float32(Autocast.Conv(convSeg, output)).MoveToOuterDisposeScope();
    }
}
