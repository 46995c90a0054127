using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Tests.Parity;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// The BEiT trunk (<see cref="VitTrunk"/>) is written once and shared by the classifier, the MIM model and the
/// segmentation backbone: the same state-dict names in the same order for all three, and kept block outputs that are
/// the reference's hidden states (seeded construction: <see cref="SeededConstructionTests"/>).
/// </summary>
public sealed class VitTrunkTests
{
    // The trunk settings the three models are built with in the sharing test (64 px, 16 px patches, 4 blocks).
    private static VitConfig Vit => VitConfig.Base(numClasses: 0) with { ImgSize = 64, EmbedDim = 32, Depth = 4, NumHeads = 2 };

    private static readonly string[] TrunkNames = { "cls_token", "mask_token", "pos_embed", "patch_embed.", "pos_drop", "rel_pos_bias.", "blocks." };

    private static List<string> TrunkKeys(nn.Module m, string prefix = "") =>
        m.state_dict().Keys.Select(k => k[prefix.Length..]).Where(k => TrunkNames.Any(k.StartsWith)).ToList();

    [Fact]
    public void ClassifierMimAndSegmentationBackbone_RegisterTheSameTrunk()
    {
        manual_seed(1);
        using var vit = new BeitVisionTransformer(Vit);
        using var mim = new BeitMim(MimConfig.Micro() with { ImgSize = 64, PatchSize = 16, UseSharedRelPosBias = false, UseRelPosBias = true });
        using var seg = new BeitSegmenter(SegmentationConfig.Micro() with { Backbone = Vit });

        var vitKeys = TrunkKeys(vit);
        Assert.Equal("cls_token", vitKeys[0]);
        Assert.Contains("blocks.3.attn.relative_position_bias_table", vitKeys);
        Assert.Equal(vitKeys, TrunkKeys(seg, "backbone."));
        // MIM's trunk is the same plus its [MASK] embedding, registered right after [CLS] as the reference does.
        Assert.Equal(vitKeys.Take(1).Append("mask_token").Concat(vitKeys.Skip(1)), TrunkKeys(mim));
        Assert.Equal(4, vit.Trunk.Depth);
        Assert.Same(vit.Trunk.Blocks[0], vit.Blocks[0]);
        Assert.Same(seg.Backbone.Trunk.PatchEmbed, seg.Backbone.PatchEmbed);
    }

    /// <summary>Kept blocks of the classifier's trunk are the reference's hidden states (vit_cls fixture).</summary>
    [Fact]
    public void KeptBlocks_AreTheReferenceHiddenStates_Classifier()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load("vit_cls");
        var io = fixture.LoadIo();
        using var vit = new BeitVisionTransformer(ModelJson.Deserialize<VitConfig>(fixture.Config, "vit_cls"));
        VitCheckpoint.Load(vit, fixture.WeightsSafetensors);
        vit.eval();
        using var _ = no_grad();

        using var pass = vit.Trunk.Forward(io["images"], new[] { 1, 0, 1 });
        Assert.Equal(new[] { 0, 1 }, pass.Indices);
        for (var i = 0; i < 2; i++)
            TensorAssert.Matches(fixture.Io.Single(x => x.Name == $"hidden_{i}"), io[$"hidden_{i}"], pass.Block(i));
        Assert.True(pass.Tokens.Equals(pass.Block(1)), "the trunk's tokens are the last block's output");
        Assert.Null(pass.SharedBias);

        using var onlyLast = vit.Trunk.Forward(io["images"], null);
        Assert.Empty(onlyLast.Intermediates);
        Assert.True(onlyLast.Tokens.Equals(pass.Tokens), "keeping blocks does not change the pass");
    }

    /// <summary>Kept blocks of the MIM trunk, masked patches replaced, are the reference's hidden states (mim fixture).</summary>
    [Fact]
    public void KeptBlocks_AreTheReferenceHiddenStates_Mim()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load("mim");
        var io = fixture.LoadIo();
        using var mim = new BeitMim(ModelJson.Deserialize<MimConfig>(fixture.Config, "mim"));
        MimCheckpoint.Load(mim, fixture.WeightsSafetensors);
        mim.eval();
        using var _ = no_grad();

        using var pass = mim.Trunk.Forward(io["images"], new[] { 0, 3 }, io["bool_masked_pos"]);
        foreach (var i in new[] { 0, 3 })
            TensorAssert.Matches(fixture.Io.Single(x => x.Name == $"hidden_{i}"), io[$"hidden_{i}"], pass.Block(i));
        Assert.NotNull(pass.SharedBias);
        Assert.Throws<ArgumentOutOfRangeException>(() => pass.Block(1));

        // ForwardFeatures without kept blocks computes the same final states as with them.
        using var lean = mim.ForwardFeatures(io["images"], io["bool_masked_pos"]);
        using var full = mim.ForwardFeatures(io["images"], io["bool_masked_pos"], keepHidden: true);
        Assert.Empty(lean.Hidden);
        Assert.Equal(4, full.Hidden.Count);
        Assert.True(lean.Final.Equals(full.Final) && lean.Aggregated.Equals(full.Aggregated), "keeping blocks changed the MIM outputs");
    }

    [Fact]
    public void BadRequests_AreClearErrors()
    {
        manual_seed(2);
        using var vit = new BeitVisionTransformer(VitConfig.Micro());
        using var images = randn(1, 3, 32, 32);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => vit.Trunk.Forward(images, new[] { 2 }));
        Assert.Contains("Block index 2 is outside 0..1", e.Message);
        using var mask = zeros(1, 16, dtype: @bool);
        Assert.Throws<ArgumentException>(() => vit.Trunk.Forward(images, null, mask));
        using var larger = randn(1, 3, 48, 48);
        Assert.Contains("built for 32x32 inputs", Assert.Throws<ArgumentException>(() => vit.Trunk.Forward(larger)).Message);

        using var mim = new BeitMim(MimConfig.Micro());
        using var wrongMask = zeros(1, 9, dtype: @bool);
        Assert.Contains("bool_masked_pos must be (1, 16)", Assert.Throws<ArgumentException>(() => mim.Trunk.Forward(images, null, wrongMask)).Message);
    }

    /// <summary>
    /// Every tensor of a forward pass belongs to the caller's dispose scope. With mean pooling the classifier's tokens
    /// are the last block's output, which is also kept as a hidden state; moving it out once per list took it past the
    /// caller's scope, where nothing disposed it.
    /// </summary>
    [Fact]
    public void ForwardPassTensors_AreDisposedWithTheCallersScope()
    {
        manual_seed(3);
        using var vit = new BeitVisionTransformer(VitConfig.Micro());
        using var images = randn(2, 3, 32, 32);
        using var outer = NewDisposeScope();
        VitOutput output;
        using (NewDisposeScope())
        {
            output = vit.ForwardFeatures(images, keepHidden: true);
            // The last block's output, twice: two handles on one storage, so disposing either leaves the other.
            Assert.NotSame(output.Tokens, output.Hidden[^1]);
            Assert.True(output.Tokens.allclose(output.Hidden[^1], rtol: 0, atol: 0));
        }
        Assert.True(output.Tokens.IsInvalid, "the tokens outlived the scope they were returned into");
        Assert.All(output.Hidden, h => Assert.True(h.IsInvalid));
        Assert.True(output.Features.IsInvalid);
    }

    [Fact]
    public void KeptLastBlock_OutlivesTheTokensItEquals()
    {
        manual_seed(4);
        using var vit = new BeitVisionTransformer(VitConfig.Micro());
        using var images = randn(1, 3, 32, 32);
        using var pass = vit.Trunk.Forward(images, [vit.Trunk.Depth - 1]);
        var last = pass.Block(vit.Trunk.Depth - 1);
        using var expected = pass.Tokens.clone();
        pass.Tokens.Dispose();
        Assert.False(last.IsInvalid, "disposing Tokens disposed the kept last block");
        Assert.True(last.allclose(expected, rtol: 0, atol: 0));
    }
}
