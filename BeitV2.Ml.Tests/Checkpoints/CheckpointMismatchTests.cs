using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using static BeitV2.TestSupport.CheckpointFixtures;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// A fine-tuned checkpoint loaded into a model of another shape must fail, naming the offending
/// keys; only the classification head may be replaced, and only when the caller asks for it.
/// </summary>
public sealed class CheckpointMismatchTests
{
    public enum Change
    {
        Deeper, Shallower, Wider, MoreHeads, MoreClasses, NoHead, NoRelPos, SharedRelPos, AbsPosEmb,
        NoQkvBias, NoLayerScale, ClsPooling, SmallerMlp, SmallerPatch, OneChannel,
    }

    /// <summary>What each change must report: a missing, an unexpected and a mismatched key (null: none of that kind).</summary>
    public static TheoryData<Change, string?, string?, string?> Cases() => new()
    {
        { Change.Deeper, "blocks.2.attn.qkv.weight", null, null },
        { Change.Shallower, null, "blocks.1.mlp.fc2.weight", null },
        { Change.Wider, null, null, "patch_embed.proj.weight" },
        { Change.MoreHeads, null, null, "blocks.0.attn.relative_position_bias_table" },
        { Change.MoreClasses, null, null, "head.weight" },
        { Change.NoHead, null, "head.weight", null },
        { Change.NoRelPos, null, "blocks.0.attn.relative_position_bias_table", null },
        { Change.SharedRelPos, "rel_pos_bias.relative_position_bias_table", "blocks.1.attn.relative_position_bias_table", null },
        { Change.AbsPosEmb, "pos_embed", null, null },
        { Change.NoQkvBias, null, "blocks.0.attn.q_bias", null },
        { Change.NoLayerScale, null, "blocks.0.gamma_1", null },
        { Change.ClsPooling, "norm.weight", "fc_norm.weight", null },
        { Change.SmallerMlp, null, null, "blocks.0.mlp.fc1.weight" },
        { Change.SmallerPatch, null, null, "patch_embed.proj.weight" },
        { Change.OneChannel, null, null, "patch_embed.proj.weight" },
    };

    private static VitConfig Apply(VitConfig c, Change change) => change switch
    {
        Change.Deeper => c with { Depth = 3 },
        Change.Shallower => c with { Depth = 1 },
        Change.Wider => c with { EmbedDim = 96 },
        Change.MoreHeads => c with { NumHeads = 8 },
        Change.MoreClasses => c with { NumClasses = 5 },
        Change.NoHead => c with { NumClasses = 0 },
        Change.NoRelPos => c with { UseRelPosBias = false },
        Change.SharedRelPos => c with { UseRelPosBias = false, UseSharedRelPosBias = true },
        Change.AbsPosEmb => c with { UseAbsPosEmb = true },
        Change.NoQkvBias => c with { QkvBias = false },
        Change.NoLayerScale => c with { InitValues = 0 },
        Change.ClsPooling => c with { UseMeanPooling = false },
        Change.SmallerMlp => c with { MlpRatio = 2 },
        // Same 4×4 grid (so the tables fit), but 8 px patches.
        Change.SmallerPatch => c with { ImgSize = 32, PatchSize = 8 },
        Change.OneChannel => c with { InChans = 1 },
        _ => throw new ArgumentOutOfRangeException(nameof(change)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MismatchedModelIsRejectedWithTheOffendingKeys(Change change, string? missing, string? unexpected, string? shape)
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        using var model = new BeitVisionTransformer(Apply(VitCls(), change));
        var before = Snapshot(model);

        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, raw));

        Assert.StartsWith("The checkpoint does not fit the BEiT vision transformer", e.Message);
        Check(missing, e.MissingKeys, "missing keys");
        Check(unexpected, e.UnexpectedKeys, "unexpected keys");
        Check(shape, e.ShapeMismatches, "shape mismatches");
        // A failed load leaves the model untouched (nothing is copied before every key is checked).
        AssertWeightsEqual(before, model);

        void Check(string? key, IReadOnlyList<string> reported, string kind)
        {
            if (key is null)
            {
                Assert.True(reported.Count == 0, $"unexpected {kind}: {string.Join(", ", reported)}");
                return;
            }
            Assert.Contains(reported, r => r == key || r.StartsWith(key + " (", StringComparison.Ordinal));
            Assert.Contains(kind + ": ", e.Message);
            Assert.Contains(reported[0], e.Message);
            if (reported.Count <= 12) Assert.Contains(key, e.Message);
            else Assert.Contains($"({reported.Count} in all)", e.Message);
        }
    }

    [Fact]
    public void DepthMismatchListsEveryMissingKeyOfTheExtraBlock()
    {
        using var scope = NewDisposeScope();
        using var model = new BeitVisionTransformer(VitCls() with { Depth = 3 });
        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, Raw("vit_cls")));
        var block2 = model.state_dict().Keys.Where(k => k.StartsWith("blocks.2.", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(16, block2.Count);
        Assert.Equal(block2, e.MissingKeys.Order());
        Assert.Empty(e.UnexpectedKeys);
        Assert.Empty(e.ShapeMismatches);
    }

    [Fact]
    public void UnexpectedKeysAreReportedInAStableOrder()
    {
        using var scope = NewDisposeScope();
        using var model = new BeitVisionTransformer(VitCls() with { Depth = 1 });
        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, Raw("vit_cls")));
        Assert.Equal(16, e.UnexpectedKeys.Count);
        Assert.All(e.UnexpectedKeys, k => Assert.StartsWith("blocks.1.", k));
        Assert.Equal(e.UnexpectedKeys.Order(StringComparer.Ordinal), e.UnexpectedKeys);
        Assert.Contains("unexpected keys: blocks.1.attn.proj.bias, blocks.1.attn.proj.weight, ", e.Message);
        Assert.EndsWith("… (16 in all).", e.Message);
    }

    [Fact]
    public void ShapeMismatchReportsTheStoredShape()
    {
        using var scope = NewDisposeScope();
        // 8 heads and 96 px: the table would need resizing *and* has the wrong head count. The report
        // must show what the file holds (52 rows × 4 heads), not an intermediate resized table.
        using var model = new BeitVisionTransformer(VitCls() with { NumHeads = 8, ImgSize = 96 });
        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, Raw("vit_cls")));
        Assert.Contains("blocks.0.attn.relative_position_bias_table (checkpoint [52,4], model [124,8])", e.ShapeMismatches);
        Assert.Empty(e.MissingKeys);
        Assert.Empty(e.UnexpectedKeys);
    }

    [Fact]
    public void HeadMismatchIsAllowedOnlyWhenAsked()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        using var model = new BeitVisionTransformer(VitCls() with { NumClasses = 5 });
        var freshHead = Snapshot(model).Where(kv => kv.Key.StartsWith("head.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value);

        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, raw));
        Assert.Equal(2, e.ShapeMismatches.Count);
        Assert.Contains("head.weight (checkpoint [10,64], model [5,64])", e.ShapeMismatches);
        Assert.Contains(e.ShapeMismatches, s => s.StartsWith("head.bias ", StringComparison.Ordinal));

        VitCheckpoint.Load(model, raw, allowHeadMismatch: true);
        AssertWeightsEqual(freshHead, model);
        var expected = CheckpointKeys.Normalize(raw);
        AssertWeightsEqual(expected, model, k => !k.StartsWith("head.", StringComparison.Ordinal));
        Assert.Equal(5, model.Head!.weight!.shape[0]);
    }

    [Fact]
    public void MatchingHeadIsStillLoadedWhenMismatchIsAllowed()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        using var model = new BeitVisionTransformer(VitCls());
        VitCheckpoint.Load(model, raw, allowHeadMismatch: true);
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model);
    }

    [Fact]
    public void HeadlessModelTakesTheBackboneWhenMismatchIsAllowed()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        using var model = new BeitVisionTransformer(VitCls() with { NumClasses = 0 });
        VitCheckpoint.Load(model, raw, allowHeadMismatch: true);
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model, k => !k.StartsWith("head.", StringComparison.Ordinal));
        Assert.Null(model.Head);
    }

    [Fact]
    public void HeadMismatchDoesNotExcuseOtherMismatches()
    {
        using var scope = NewDisposeScope();
        using var model = new BeitVisionTransformer(VitCls() with { NumClasses = 5, Depth = 3 });
        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, Raw("vit_cls"), allowHeadMismatch: true));
        Assert.Contains("blocks.2.attn.qkv.weight", e.MissingKeys);
        Assert.Empty(e.ShapeMismatches);
    }

    [Fact]
    public void FineTunedCheckpointIntoMimModelExplainsTheRelPosMode()
    {
        using var scope = NewDisposeScope();
        // vit_cls has per-layer tables; a MIM model of the default (shared) mode cannot take them.
        var c = Mim() with { Depth = 2, EarlyLayers = 1 };
        using var model = new BeitMim(c);
        var e = Assert.Throws<CheckpointException>(() => MimCheckpoint.Load(model, Raw("vit_cls")));
        Assert.Contains("per-layer relative position tables", e.Message);
        Assert.Contains("#1332", e.Message);
    }
}
