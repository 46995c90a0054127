using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models;

/// <summary>What one pass of the trunk returns.</summary>
/// <param name="Tokens">Raw output of the last block (B, T, C), [CLS] first; no final norm.</param>
/// <param name="Indices">The blocks whose raw outputs were kept, ascending.</param>
/// <param name="Intermediates">Raw output (B, T, C) of each block in <paramref name="Indices"/>, in that order.</param>
/// <param name="SharedBias">The shared relative position bias (H, T, T) the blocks used, or null: a head that continues
/// with more blocks (MIM's aggregation head) must add the same one.</param>
public sealed record TrunkOutput(Tensor Tokens, IReadOnlyList<int> Indices, IReadOnlyList<Tensor> Intermediates, Tensor? SharedBias)
    : IDisposable
{
    /// <summary>The raw output of block <paramref name="block"/> (it must have been requested).</summary>
    public Tensor Block(int block)
    {
        for (var i = 0; i < Indices.Count; i++)
            if (Indices[i] == block) return Intermediates[i];
        throw new ArgumentOutOfRangeException(nameof(block), $"Block {block}'s output was not kept (kept: {string.Join(", ", Indices)}).");
    }

    public void Dispose()
    {
        Tokens.Dispose();
        foreach (var t in Intermediates) t.Dispose();
        SharedBias?.Dispose();
    }
}

/// <summary>
/// The BEiT trunk, written once for the classifier / VQ-KD coder (<see cref="BeitVisionTransformer"/>), the MIM model
/// (<see cref="BeitMim"/>) and the segmentation backbone (<see cref="Segmentation.BeitSegmentationBackbone"/>): patch
/// embedding, [CLS] (and MIM's [MASK] embedding), absolute position embedding, the shared relative position bias
/// and the block stack, with the raw outputs of chosen blocks returned on the way (timm <c>Beit.forward_intermediates</c>).
/// Final norms, pooling and heads stay with the models.
/// </summary>
/// <remarks>
/// The trunk is not a module of its own: it registers its parameters and submodules on the model that owns it,
/// under the reference names (<c>cls_token</c>, <c>mask_token</c>, <c>pos_embed</c>, <c>patch_embed</c>,
/// <c>pos_drop</c>, <c>rel_pos_bias</c>, <c>blocks</c>) and in the reference order, so state dicts, parameter order
/// and seeded initialisation are those of the three models before they shared it (a child module would prefix every
/// key). Parameters are looked up on the owner at each call because TorchSharp's <c>Module.to</c> replaces them.
/// </remarks>
public sealed class VitTrunk
{
    private readonly nn.Module owner;
    private readonly PatchEmbed patchEmbed;
    private readonly Dropout posDrop;
    private readonly RelativePositionBias? relPosBias;
    private readonly ModuleList<Block> blocks;
    private readonly bool hasMaskToken;

    /// <param name="owner">the model whose state dict holds the trunk's weights.</param>
    /// <param name="config">the trunk's settings.</param>
    /// <param name="maskToken">register MIM's learned [MASK] embedding (<c>mask_token</c>).</param>
    /// <exception cref="ArgumentException">the config is invalid (<see cref="VitTrunkConfig.Validate"/>).</exception>
    public VitTrunk(nn.Module owner, VitTrunkConfig config, bool maskToken = false)
    {
        config.Validate();
        this.owner = owner;
        Config = config;
        hasMaskToken = maskToken;
        var c = config;
        patchEmbed = new PatchEmbed(c.ImgSize, c.PatchSize, c.InChans, c.EmbedDim);
        var grid = (patchEmbed.GridSize, patchEmbed.GridSize);

        owner.register_parameter("cls_token", ModuleExtensions.Param(zeros(1, 1, c.EmbedDim)));
        if (maskToken) owner.register_parameter("mask_token", ModuleExtensions.Param(zeros(1, 1, c.EmbedDim)));
        if (c.UseAbsPosEmb) owner.register_parameter("pos_embed", ModuleExtensions.Param(zeros(1, patchEmbed.NumPatches + 1, c.EmbedDim)));
        owner.register_module("patch_embed", patchEmbed);
        posDrop = nn.Dropout(c.DropRate);
        owner.register_module("pos_drop", posDrop);
        if (c.UseSharedRelPosBias)
        {
            relPosBias = new RelativePositionBias(grid, c.NumHeads);
            owner.register_module("rel_pos_bias", relPosBias);
        }
        blocks = Block.StackFor(c, grid);
        owner.register_module("blocks", blocks);
        Blocks = blocks.ToList();
    }

    public VitTrunkConfig Config { get; }
    public PatchEmbed PatchEmbed => patchEmbed;
    /// <summary>The shared relative position bias (<c>rel_pos_bias</c>), or null when the config has none.</summary>
    public RelativePositionBias? SharedRelPosBias => relPosBias;
    public IReadOnlyList<Block> Blocks { get; }
    public int GridSize => patchEmbed.GridSize;
    public int NumPatches => patchEmbed.NumPatches;
    public int Depth => blocks.Count;

    /// <summary>Every block index, for keeping all raw block outputs.</summary>
    public IReadOnlyList<int> AllBlocks => Enumerable.Range(0, blocks.Count).ToArray();

    /// <summary>
    /// Embeds <paramref name="images"/> and runs every block, keeping the raw outputs of the blocks in
    /// <paramref name="keep"/> (none when null).
    /// </summary>
    /// <param name="boolMaskedPos">(B, N) patches to replace by the [MASK] embedding; only for a trunk with one
    /// (null there means nothing is masked).</param>
    public TrunkOutput Forward(Tensor images, IEnumerable<int>? keep = null, Tensor? boolMaskedPos = null)
    {
        var indices = (keep ?? Array.Empty<int>()).Distinct().Order().ToArray();
        foreach (var i in indices)
            if (i < 0 || i >= blocks.Count)
                throw new ArgumentOutOfRangeException(nameof(keep), $"Block index {i} is outside 0..{blocks.Count - 1}.");
        using var scope = NewDisposeScope();
        var x = Embed(images, boolMaskedPos);
        var shared = relPosBias?.forward();
        var kept = new List<Tensor>(indices.Length);
        for (var i = 0; i < blocks.Count; i++)
        {
            x = blocks[i].forward(x, shared);
            // The last block's output is also Tokens: keep it as a second handle (alias) so that disposing one
            // does not dispose the other.
            if (Array.BinarySearch(indices, i) >= 0) kept.Add(i == blocks.Count - 1 ? x.alias() : x);
        }
        ModuleExtensions.MoveToOuterDisposeScope(kept.Append(x).Append(shared));
        return new TrunkOutput(x, indices, kept, shared);
    }

    /// <summary>
    /// Patch embedding, the [MASK] embedding where masked, [CLS] prepended, the absolute position embedding
    /// (interpolated DINO-style when the image gives another grid), position dropout: the first block's input (B, T, C).
    /// </summary>
    public Tensor Embed(Tensor images, Tensor? boolMaskedPos = null)
    {
        using var scope = NewDisposeScope();
        var x = patchEmbed.forward(images);
        if (Config.UseRelPosBias || Config.UseSharedRelPosBias) EnsureGrid(images);
        if (hasMaskToken) x = Mask(x, boolMaskedPos);
        else if (boolMaskedPos is not null) throw new ArgumentException("This model has no [MASK] embedding; it cannot take a mask.", nameof(boolMaskedPos));
        var b = x.shape[0];
        x = cat(new[] { owner.get_parameter("cls_token")!.expand(b, -1, -1), x }, 1);
        if (Config.UseAbsPosEmb)
        {
            Tensor pos = owner.get_parameter("pos_embed")!;
            if (x.shape[1] != pos.shape[1])
                pos = PositionEmbedding.Interpolate(pos, (int)images.shape[2] / Config.PatchSize, (int)images.shape[3] / Config.PatchSize);
            x = x + pos;
        }
        return posDrop.forward(x).MoveToOuterDisposeScope();
    }

    /// <summary>BEiT's masking: x·(1−w) + mask_token·w with w the mask as a float (a null mask masks nothing).</summary>
    private Tensor Mask(Tensor x, Tensor? boolMaskedPos)
    {
        long b = x.shape[0], n = x.shape[1];
        var mask = boolMaskedPos ?? zeros(b, n, dtype: @bool, device: x.device);
        if (mask.shape.Length != 2 || mask.shape[0] != b || mask.shape[1] != n)
            throw new ArgumentException($"bool_masked_pos must be ({b}, {n}); got ({string.Join(", ", mask.shape)}).", nameof(boolMaskedPos));
        var maskToken = owner.get_parameter("mask_token")!.expand(b, n, -1);
        var w = mask.unsqueeze(-1).to_type(maskToken.dtype);
        return x * (1 - w) + maskToken * w;
    }

    /// <summary>Relative position tables fix the patch grid: other input sizes are an error, not a silent mismatch.</summary>
    private void EnsureGrid(Tensor images)
    {
        var g = patchEmbed.GridSize;
        if (images.shape[2] / Config.PatchSize != g || images.shape[3] / Config.PatchSize != g)
            throw new ArgumentException(
                $"This model's relative position bias is built for {Config.ImgSize}x{Config.ImgSize} inputs; got {images.shape[2]}x{images.shape[3]}. " +
                "Resize the input, or load the checkpoint into a model of that size (tables are resized on load).");
    }
}
