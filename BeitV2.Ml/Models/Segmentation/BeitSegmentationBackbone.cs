using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Segmentation;

/// <summary>
/// The segmentation backbone of unilm beit2/semantic_segmentation/backbone/beit.py (class
/// <c>BEiT</c>): the BEiT trunk (<see cref="VitTrunk"/>: cls_token, patch_embed, optional pos_embed /
/// shared rel_pos_bias, blocks with per-layer relative tables and layer scale) without any final norm or
/// head, followed by four necks that turn the selected blocks' patch tokens into a feature pyramid.
/// </summary>
/// <remarks>
/// For each block i in <c>out_indices</c> the raw block output without [CLS], x[:, 1:], is reshaped
/// to (B, C, H/P, W/P). Patch size 16: fpn1 = ConvTranspose(2,2) → BatchNorm (SyncBN in the
/// reference) → GELU → ConvTranspose(2,2) (stride 4), fpn2 = ConvTranspose(2,2) (stride 8),
/// fpn3 = identity (stride 16), fpn4 = MaxPool(2) (stride 32). Patch size 8: fpn1 = ConvTranspose(2,2),
/// fpn2 = identity, fpn3 = MaxPool(2), fpn4 = MaxPool(4). Patch size 4 (our extension for small images; the
/// reference defines no necks for it): fpn1 = identity, fpn2..fpn4 = MaxPool(2, 4, 8) (strides 4..32); with output
/// stride 2 (<see cref="SegmentationConfig.OutputStride"/>) fpn1 = ConvTranspose(2,2) → BatchNorm → GELU (the first three
/// modules of the reference's patch-16 fpn1, with its names fpn1.0 and fpn1.1), fpn2 = identity, fpn3 = MaxPool(2),
/// fpn4 = MaxPool(4) (strides 2..16; the patch-8 layout one step finer). The necks are applied to the first, second,
/// … selected block in order, so fewer than four out_indices give fewer levels (as in the reference).
/// State-dict names are the official ones (without the <c>backbone.</c> prefix the segmenter adds).
/// </remarks>
public sealed class BeitSegmentationBackbone : ExplicitModule<Tensor, Tensor[]>
{
    private readonly VitTrunk trunk;
    private readonly nn.Module<Tensor, Tensor>[] necks;
    private readonly int[] outIndices;

    public VitConfig Config { get; }
    public IReadOnlyList<int> OutIndices => outIndices;
    public int GridSize => trunk.GridSize;

    /// <summary>Stride of the finest level (<see cref="SegmentationConfig.OutputStride"/>).</summary>
    public int OutputStride { get; }

    public BeitSegmentationBackbone(VitConfig config, IReadOnlyList<int> outIndices, int outputStride = SegmentationConfig.DefaultOutputStride)
        : base(nameof(BeitSegmentationBackbone))
    {
        SegmentationConfig.ValidateOutIndices(outIndices, config.Depth);
        SegmentationConfig.ValidatePatchSize(config, outputStride);
        Config = config;
        OutputStride = outputStride;
        this.outIndices = outIndices.ToArray();
        var c = config;
        trunk = new VitTrunk(this, c);

        long e = c.EmbedDim;
        necks = c.PatchSize == 16
            ? new nn.Module<Tensor, Tensor>[]
            {
                nn.Sequential(("0", nn.ConvTranspose2d(e, e, 2, stride: 2)), ("1", nn.BatchNorm2d(e)), ("2", nn.GELU()),
                    ("3", nn.ConvTranspose2d(e, e, 2, stride: 2))),
                nn.Sequential(("0", nn.ConvTranspose2d(e, e, 2, stride: 2))),
                nn.Identity(),
                nn.MaxPool2d(2, 2),
            }
            : c.PatchSize == 8 ? new nn.Module<Tensor, Tensor>[]
            {
                nn.Sequential(("0", nn.ConvTranspose2d(e, e, 2, stride: 2))),
                nn.Identity(),
                nn.Sequential(("0", nn.MaxPool2d(2, 2))),
                nn.Sequential(("0", nn.MaxPool2d(4, 4))),
            }
            // Output stride 2 (4 px patches only): one learned 2× upsampling with a nonlinearity for the finest level, so the
            // head sees 2 px detail; BatchNorm + GELU as in the first stage of the reference's patch-16 fpn1.
            : outputStride == 2 ? new nn.Module<Tensor, Tensor>[]
            {
                nn.Sequential(("0", nn.ConvTranspose2d(e, e, 2, stride: 2)), ("1", nn.BatchNorm2d(e)), ("2", nn.GELU())),
                nn.Identity(),
                nn.Sequential(("0", nn.MaxPool2d(2, 2))),
                nn.Sequential(("0", nn.MaxPool2d(4, 4))),
            }
            // Patch size 4 is our extension (the reference stops at 8): the same strides 4/8/16/32, parameter-free.
            : new nn.Module<Tensor, Tensor>[]
            {
                nn.Identity(),
                nn.Sequential(("0", nn.MaxPool2d(2, 2))),
                nn.Sequential(("0", nn.MaxPool2d(4, 4))),
                nn.Sequential(("0", nn.MaxPool2d(8, 8))),
            };
        // All four are registered (the parameter-free ones too, so train()/eval() and Dispose reach them).
        for (var i = 0; i < necks.Length; i++) register_module($"fpn{i + 1}", necks[i]);

        SegmentationInit.InitBackbone(this);
    }

    public VitTrunk Trunk => trunk;
    public IReadOnlyList<Block> Blocks => trunk.Blocks;
    public PatchEmbed PatchEmbed => trunk.PatchEmbed;

    /// <summary>The feature pyramid: one map per out index, strides OutputStride · (1, 2, 4, 8) (4, 8, 16, 32 by default).</summary>
    public override Tensor[] forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var features = Necks(ForwardFeatureMaps(images));
        ModuleExtensions.MoveToOuterDisposeScope(features);
        return features;
    }

    /// <summary>
    /// The feature pyramid and the image's pooled feature from one pass: the mean over the patch grid of the deepest selected
    /// block's tokens (B, C), before the necks (the out-of-domain score's feature; the ONNX graph's <c>mean</c> output).
    /// </summary>
    public (Tensor[] Features, Tensor Pooled) ForwardWithPooled(Tensor images)
    {
        using var scope = NewDisposeScope();
        var maps = ForwardFeatureMaps(images);
        var pooled = maps[^1].mean(new long[] { 2, 3 });
        var features = Necks(maps);
        ModuleExtensions.MoveToOuterDisposeScope(features);
        return (features, pooled.MoveToOuterDisposeScope());
    }

    private Tensor[] Necks(Tensor[] maps)
    {
        var features = new Tensor[maps.Length];
        for (var i = 0; i < maps.Length; i++) features[i] = necks[i].forward(maps[i]);
        return features;
    }

    /// <summary>The selected blocks' patch tokens as (B, C, H/P, W/P) maps, before the necks.</summary>
    public Tensor[] ForwardFeatureMaps(Tensor images)
    {
        using var scope = NewDisposeScope();
        EnsureGrid(images);
        var pass = trunk.Forward(images, outIndices);
        long b = images.shape[0], g = trunk.GridSize;
        var maps = pass.Intermediates.Select(x => x[.., 1..].permute(0, 2, 1).reshape(b, -1, g, g).contiguous()).ToArray();
        ModuleExtensions.MoveToOuterDisposeScope(maps);
        return maps;
    }

    /// <summary>The raw output (B, T, C) of every block, [CLS] first (diagnostics / parity with the ViT).</summary>
    public Tensor[] ForwardHidden(Tensor images)
    {
        using var scope = NewDisposeScope();
        EnsureGrid(images);
        var hidden = trunk.Forward(images, trunk.AllBlocks).Intermediates.ToArray();
        ModuleExtensions.MoveToOuterDisposeScope(hidden);
        return hidden;
    }

    private void EnsureGrid(Tensor images)
    {
        if (images.dim() != 4)
            throw new ArgumentException($"Expected images of shape (B, C, H, W), got ({string.Join(", ", images.shape)}).");
        var g = trunk.GridSize;
        if (images.shape[2] / Config.PatchSize != g || images.shape[3] / Config.PatchSize != g)
            throw new ArgumentException(
                $"The segmentation backbone is built for {Config.ImgSize}x{Config.ImgSize} inputs (its relative position tables " +
                $"cover a {g}x{g} patch grid); got {images.shape[2]}x{images.shape[3]}. Resize or crop the input, or build the model " +
                "for that size (tables are resized when a checkpoint is loaded). Sliding-window inference over larger images, " +
                "as the reference test mode does (512 crops, stride 341), is not implemented.");
    }
}
