using System.Security.Cryptography;
using System.Text;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Tests.Parity;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// The BEiT trunk (<see cref="VitTrunk"/>) is written once and shared by the classifier, the MIM model and the
/// segmentation backbone: the same state-dict names in the same order for all three, seeded construction exactly as
/// before the three shared it, and kept block outputs that are the reference's hidden states.
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

    /// <summary>
    /// Fingerprints of fresh models (torch.manual_seed, then the constructor) written by the code before the trunk was
    /// shared (main at 9976dd1): Σₖ k·Σ|p| over the state dict's random tensors (dim ≥ 2) in order, and SHA-256 of the
    /// state-dict and parameter names in order. Equal values mean the same names, the same order and the same random
    /// draws in the same order (so the initialisation of our training runs is unchanged). The fingerprints depend
    /// on libtorch's CPU generator: recapture them when TorchSharp's libtorch changes.
    /// </summary>
    public static TheoryData<string> SeededCases() => new(SeededBefore.Keys);

    private static readonly Dictionary<string, (double Fingerprint, string Keys, string Parameters, int Count)> SeededBefore = new()
    {
        ["vit_micro"] = (7774.89061665008, "F4732BAF406205B7E5BA454300AA6FBE4826F1026EB4BC196499C59614FC41CE", "F4732BAF406205B7E5BA454300AA6FBE4826F1026EB4BC196499C59614FC41CE", 39),
        ["vit_micro_abs"] = (6872.366596708203, "B912686D5E77DD1134E6683FE97F24248817BAA284088EED21C521140FE7A906", "B912686D5E77DD1134E6683FE97F24248817BAA284088EED21C521140FE7A906", 34),
        ["vit_micro_shared"] = (7643.277923330084, "ECAE64C4D7A708BCEBEA2870AE79E00A3E44ED0C7EB306748D93172B878D91D8", "ECAE64C4D7A708BCEBEA2870AE79E00A3E44ED0C7EB306748D93172B878D91D8", 36),
        ["mim_micro"] = (20709.077934443878, "616B9D6BD841073F96D59726FFC63C8AB17007273EB2ED224DE2B4358131158A", "616B9D6BD841073F96D59726FFC63C8AB17007273EB2ED224DE2B4358131158A", 84),
        ["mim_micro_own_head"] = (23109.50602111256, "4E0E00EC0E14DE2692524F1E10957FDDC428E24C744D5B05533688BD6E2BA6B1", "4E0E00EC0E14DE2692524F1E10957FDDC428E24C744D5B05533688BD6E2BA6B1", 93),
        ["seg_micro"] = (971596.8360558408, "1ACFDDCB629FC28A2E4A88D994DB84B6243A5632A927035E8FE276CDBD8F9E4D", "BE4FA7D657B1FF1189B8841203B8DF230B914ADC254389CEECA0FC540EE1DE58", 160),
        ["seg_micro_abs_p8"] = (898590.494363952, "49BAA192E663EF886C0FCE88476C3C471B28F38F177C2E03826625665101F267", "190D22BF9CF916AFAC665055B6FD4545D554625CEE0DFB8C47EF6547A645BFB7", 152),
    };

    private static nn.Module Build(string name)
    {
        switch (name)
        {
            case "vit_micro": manual_seed(123); return new BeitVisionTransformer(VitConfig.Micro());
            case "vit_micro_abs":
                manual_seed(124);
                return new BeitVisionTransformer(VitConfig.Micro() with
                {
                    UseAbsPosEmb = true, UseRelPosBias = false, UseMeanPooling = false, InitValues = 0, DropPathRate = 0.1,
                });
            case "vit_micro_shared":
                manual_seed(125);
                return new BeitVisionTransformer(VitConfig.Micro(numClasses: 0) with { UseSharedRelPosBias = true, UseRelPosBias = false });
            case "mim_micro": manual_seed(126); return new BeitMim(MimConfig.Micro());
            case "mim_micro_own_head":
                manual_seed(127);
                return new BeitMim(MimConfig.Micro() with
                {
                    SharedLmHead = false, UseAbsPosEmb = true, UseSharedRelPosBias = false, UseRelPosBias = true, DropPathRate = 0.2,
                });
            case "seg_micro": manual_seed(128); return new BeitSegmenter(SegmentationConfig.Micro());
            case "seg_micro_abs_p8":
                manual_seed(129);
                return new BeitSegmenter(SegmentationConfig.Micro() with
                {
                    Backbone = SegmentationConfig.Micro().Backbone with { UseAbsPosEmb = true, PatchSize = 8, ImgSize = 32 },
                });
            default: throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    [Theory]
    [MemberData(nameof(SeededCases))]
    public void SeededConstruction_IsThatOfBeforeTheTrunkWasShared(string name)
    {
        using var model = Build(name);
        var (fingerprint, keysHash, parametersHash, count) = SeededBefore[name];
        var state = model.state_dict();
        var keys = state.Keys.ToList();
        Assert.True(count == keys.Count && keysHash == Hash(keys), "state-dict names or order changed:\n" + string.Join("\n", keys));
        var parameters = model.named_parameters().Select(p => p.name).ToList();
        Assert.True(parametersHash == Hash(parameters), "parameter names or order changed:\n" + string.Join("\n", parameters));
        double actual = 0;
        var k = 0;
        foreach (var (_, t) in state)
        {
            k++;
            if (!t.is_floating_point() || t.dim() < 2) continue;
            using var sum = t.detach().to_type(ScalarType.Float64).abs().sum();
            actual += k * sum.item<double>();
        }
        // Float64 sums of the same float32 draws: only summation order (vector width) may move the last digits.
        Assert.InRange(actual, fingerprint * (1 - 1e-9), fingerprint * (1 + 1e-9));
    }

    private static string Hash(IEnumerable<string> names) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", names))));

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
            Assert.Same(output.Tokens, output.Hidden[^1]);
        }
        Assert.True(output.Tokens.IsInvalid, "the tokens outlived the scope they were returned into");
        Assert.All(output.Hidden, h => Assert.True(h.IsInvalid));
        Assert.True(output.Features.IsInvalid);
    }
}
