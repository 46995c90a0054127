using BeitV2.Ml.Precision;
using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>
/// mmseg 0.11 <c>UPerHead</c> (UperNet decode head, in_index [0, 1, 2, 3]): a pyramid pooling module
/// on the coarsest level, a top-down FPN over the other levels, fusion of all levels at the finest
/// resolution, Dropout2d and a 1×1 classifier.
/// </summary>
/// <remarks>
/// Keys: <c>psp_modules.{i}.1.{conv,bn}</c> (index 0 of each branch is AdaptiveAvgPool2d(scale)),
/// <c>bottleneck</c> (3×3 on cat(x, ppm outputs)), <c>lateral_convs.{0..L-2}</c> (1×1),
/// <c>fpn_convs.{0..L-2}</c> (3×3), <c>fpn_bottleneck</c> (3×3 on L·channels), <c>conv_seg</c> (1×1).
/// Every resize is bilinear with the configured align_corners (False in the reference).
/// </remarks>
public sealed class UperHead : ExplicitModule<IReadOnlyList<Tensor>, Tensor>
{
    private readonly ModuleList<Sequential> pspModules;
    private readonly ConvModule bottleneck;
    private readonly ModuleList<ConvModule> lateralConvs;
    private readonly ModuleList<ConvModule> fpnConvs;
    private readonly ConvModule fpnBottleneck;
    private readonly Dropout2d? dropout;
    private readonly Conv2d convSeg;
    private readonly bool alignCorners;
    private readonly int levels;

    public UperHead(IReadOnlyList<long> inChannels, long channels, long numClasses, IReadOnlyList<int> poolScales,
        double dropoutRatio, bool alignCorners) : base(nameof(UperHead))
    {
        if (inChannels.Count < 1) throw new ArgumentException("UPerHead needs at least one input level.", nameof(inChannels));
        this.alignCorners = alignCorners;
        levels = inChannels.Count;
        var top = inChannels[^1];

        pspModules = new ModuleList<Sequential>();
        foreach (var scale in poolScales)
            pspModules.Add(nn.Sequential(("0", nn.AdaptiveAvgPool2d(scale)), ("1", new ConvModule(top, channels, 1))));
        register_module("psp_modules", pspModules);
        bottleneck = new ConvModule(top + poolScales.Count * channels, channels, 3, padding: 1);
        register_module("bottleneck", bottleneck);

        lateralConvs = new ModuleList<ConvModule>();
        fpnConvs = new ModuleList<ConvModule>();
        for (var i = 0; i < levels - 1; i++)
        {
            lateralConvs.Add(new ConvModule(inChannels[i], channels, 1));
            fpnConvs.Add(new ConvModule(channels, channels, 3, padding: 1));
        }
        register_module("lateral_convs", lateralConvs);
        register_module("fpn_convs", fpnConvs);
        fpnBottleneck = new ConvModule(levels * channels, channels, 3, padding: 1);
        register_module("fpn_bottleneck", fpnBottleneck);

        convSeg = nn.Conv2d(channels, numClasses, 1);
        register_module("conv_seg", convSeg);
        if (dropoutRatio > 0)
        {
            dropout = nn.Dropout2d(dropoutRatio);
            register_module("dropout", dropout);
        }
        SegmentationInit.InitConvSeg(convSeg);
    }

    /// <summary>Logits at the resolution of the first (finest) input level.</summary>
    public override Tensor forward(IReadOnlyList<Tensor> inputs)
    {
        if (inputs.Count != levels)
            throw new ArgumentException($"UPerHead expects {levels} feature levels, got {inputs.Count}.", nameof(inputs));
        using var scope = NewDisposeScope();
        var laterals = new List<Tensor>();
        for (var i = 0; i < levels - 1; i++) laterals.Add(lateralConvs[i].forward(inputs[i]));
        laterals.Add(PspForward(inputs[^1]));

        // Top-down path.
        for (var i = levels - 1; i > 0; i--)
            laterals[i - 1] = laterals[i - 1] + SegmentationOps.Resize(laterals[i], laterals[i - 1].shape[2], laterals[i - 1].shape[3], alignCorners);

        var fpnOuts = new List<Tensor>();
        for (var i = 0; i < levels - 1; i++) fpnOuts.Add(fpnConvs[i].forward(laterals[i]));
        fpnOuts.Add(laterals[^1]);
        long h = fpnOuts[0].shape[2], w = fpnOuts[0].shape[3];
        for (var i = levels - 1; i > 0; i--) fpnOuts[i] = SegmentationOps.Resize(fpnOuts[i], h, w, alignCorners);

        var output = fpnBottleneck.forward(cat(fpnOuts, 1));
        return ClsSeg(output).MoveToOuterDisposeScope();
    }

    private Tensor PspForward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var outs = new List<Tensor> { x };
        foreach (var branch in pspModules)
            outs.Add(SegmentationOps.Resize(branch.forward(x), x.shape[2], x.shape[3], alignCorners));
        return bottleneck.forward(cat(outs, 1)).MoveToOuterDisposeScope();
    }

    private Tensor ClsSeg(Tensor feat)
    {
        if (dropout is null) return ConvSeg(feat);
        using var dropped = dropout.forward(feat);
        return ConvSeg(dropped);
    }

    /// <summary>conv_seg (low precision under <see cref="Autocast"/>), logits in float32.</summary>
    private Tensor ConvSeg(Tensor feat)
    {
        if (!Autocast.IsEnabled) return convSeg.forward(feat);
        using var scope = NewDisposeScope();
        return Autocast.Float32(Autocast.Conv(convSeg, feat)).MoveToOuterDisposeScope();
    }
}
