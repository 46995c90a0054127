using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// <see cref="ConvTeacherConfig"/>'s network. As a classifier (<see cref="forward"/>) it is trained with labels; as
/// a VQ-KD teacher its targets are the last stage's map, one <see cref="OutputDim"/>-vector per patch (the role CLIP's
/// patch tokens play in the paper, §2.1: the decoder regresses the teacher's per-patch features). Its receptive field
/// (24 px at 28 px input) spans most of the image, so even a background patch's target says what the image shows.
/// Inputs are ImageNet-normalised like the other backbones of this library.
/// </summary>
public sealed class ConvTeacher : ExplicitModule<Tensor, Tensor>, IVqkdTeacher
{
    private readonly nn.Module<Tensor, Tensor> stages;
    /// <summary>The layers of every stage in order (the same modules <see cref="stages"/> holds).</summary>
    private readonly List<nn.Module<Tensor, Tensor>> layersInOrder = [];
    private readonly nn.Module<Tensor, Tensor> dropout;
    private readonly nn.Module<Tensor, Tensor> head;
    private readonly ScalingLayer scaling = ScalingLayer.ForImageNet();

    public ConvTeacher(ConvTeacherConfig config) : base(nameof(ConvTeacher))
    {
        Config = config.Validate();
        var list = new List<nn.Module<Tensor, Tensor>>();
        var inChannels = config.InChans;
        for (var i = 0; i < config.Widths.Count; i++)
        {
            var width = config.Widths[i];
            var layers = new List<nn.Module<Tensor, Tensor>>();
            if (i > 0) layers.Add(nn.MaxPool2d(2));
            layers.Add(nn.Conv2d(inChannels, width, 3, padding: 1, bias: false));
            layers.Add(nn.BatchNorm2d(width));
            layers.Add(nn.ReLU());
            layers.Add(nn.Conv2d(width, width, 3, padding: 1, bias: false));
            layers.Add(nn.BatchNorm2d(width));
            layers.Add(nn.ReLU());
            layersInOrder.AddRange(layers);
            list.Add(nn.Sequential(layers));
            inChannels = width;
        }
        stages = nn.Sequential(list);
        dropout = nn.Dropout(config.DropoutRate);
        head = nn.Linear(config.FeatureDim, config.NumClasses);
        register_module("stages", stages);
        register_module("dropout", dropout);
        register_module("head", head);
        foreach (var (name, p) in named_parameters())
        {
            // Kaiming (fan_out, ReLU) for the convs as torchvision's ResNets do; a zero head bias.
            using var _ = no_grad();
            if (name.StartsWith("stages.", StringComparison.Ordinal) && p.dim() == 4)
                nn.init.kaiming_normal_(p, mode: nn.init.FanInOut.FanOut, nonlinearity: nn.init.NonlinearityType.ReLU);
            else if (name == "head.bias") p.zero_();
        }
    }

    public ConvTeacherConfig Config { get; }
    public string Kind => "conv";
    public int OutputDim => Config.OutputDim;
    public nn.Module Module => this;

    /// <summary>(B, C, S, S) ImageNet-normalised images → (B, C_last, S/P, S/P) feature map.</summary>
    public Tensor FeatureMap(Tensor images) => stages.call(images);

    /// <summary>Class logits (B, NumClasses): global average pooling of the feature map → dropout → linear.</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var pooled = FeatureMap(images).mean([2L, 3L]);
        return head.call(dropout.call(pooled)).MoveToOuterDisposeScope();
    }

    public Tensor Scale(Tensor imagesPre) => scaling.forward(imagesPre);

    /// <summary>
    /// The feature map before its last ReLU (the last BatchNorm's output). These are the targets: after the ReLU every
    /// vector is non-negative, so all of them lie in one orthant with a large common component, and a cosine loss then
    /// asks the tokenizer to tell few of them apart (a first run with them used 30 of 256 codes on test images).
    /// </summary>
    public Tensor PreActivationMap(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = images;
        for (var i = 0; i < layersInOrder.Count - 1; i++) x = layersInOrder[i].call(x);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// (B, N, OutputDim) in row-major patch order: with class-evidence targets the head applied to each cell of the
    /// feature map (the head is linear, so the cells' mean is the image's logits: every patch's target says how much it
    /// looks like each class); with feature targets <see cref="PreActivationMap"/>'s cells.
    /// </summary>
    /// <remarks>
    /// Why class evidence: BEiT v2's point is that MIM inherits the teacher's semantics (§1, §4.4: the semantic richness of
    /// the tokenizer decides the representation), and what this teacher knows of semantics is its classes. On the
    /// Fashion-MNIST pipeline's tokenizer (64 codes, same recipe) the codes' class purity was 0.34 with class evidence
    /// against 0.31 with the map's features (0.13 with shuffled labels), at the same codebook usage (81 %).
    /// </remarks>
    public Tensor GetRegressTarget(Tensor imagesPre)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var scaled = Scale(imagesPre);
        if (Config.Targets == ConvTeacherConfig.ClassEvidenceTargets)
        {
            var cells = FeatureMap(scaled).flatten(2).transpose(1, 2); // (B, N, C)
            return head.call(cells).contiguous().MoveToOuterDisposeScope();
        }
        var map = PreActivationMap(scaled);
        return map.flatten(2).transpose(1, 2).contiguous().MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) scaling.Dispose();
        base.Dispose(disposing);
    }
}
