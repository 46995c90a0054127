using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using static BeitV2.TestSupport.CheckpointFixtures;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// Spec 5.1: a MIM pretraining checkpoint (shared <c>rel_pos_bias</c> table, mask_token, lm_head,
/// cls_pt_layers, final norm) converts into the fine-tuning model with per-layer tables.
/// </summary>
public sealed class PretrainingCheckpointConversionTests
{
    [Fact]
    public void PretrainingKeysAreWhatTheConversionExpects()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("mim");
        Assert.Contains("rel_pos_bias.relative_position_bias_table", raw.Keys);
        Assert.Contains("mask_token", raw.Keys);
        Assert.Contains("lm_head.weight", raw.Keys);
        Assert.Contains("norm.weight", raw.Keys);
        Assert.Contains(raw.Keys, k => k.StartsWith("cls_pt_layers.0.", StringComparison.Ordinal));
        Assert.DoesNotContain(raw.Keys, k => k.StartsWith("blocks.", StringComparison.Ordinal) && k.EndsWith("relative_position_bias_table", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(10)]
    [InlineData(0)]
    public void SharedTableIsCopiedIntoEveryBlock(int numClasses)
    {
        using var scope = NewDisposeScope();
        var raw = Raw("mim");
        var config = Mim().ToBackbone(numClasses);
        Assert.True(config.UseRelPosBias);
        Assert.False(config.UseSharedRelPosBias);
        using var model = new BeitVisionTransformer(config);
        var fresh = Snapshot(model);

        VitCheckpoint.Load(model, raw);

        var shared = raw["rel_pos_bias.relative_position_bias_table"];
        var sd = model.state_dict();
        for (var i = 0; i < config.Depth; i++)
            AssertEqual(shared, sd[$"blocks.{i}.attn.relative_position_bias_table"], $"block {i} table");
        // Every backbone weight comes from the checkpoint ...
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model,
            k => sd.ContainsKey(k) && !k.StartsWith("rel_pos_bias.", StringComparison.Ordinal));
        // ... and fc_norm / head stay freshly initialised (the final pretraining norm is not transferred).
        AssertWeightsEqual(fresh, model, k => k.StartsWith("fc_norm.", StringComparison.Ordinal) || k.StartsWith("head.", StringComparison.Ordinal));
        Assert.DoesNotContain(sd.Keys, k => k.StartsWith("rel_pos_bias.", StringComparison.Ordinal) || k.StartsWith("lm_head.", StringComparison.Ordinal));
    }

    [Fact]
    public void ConvertedBackboneComputesTheSameBlocksAsThePretrainingModel()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("mim");
        using var mim = new BeitMim(Mim());
        MimCheckpoint.Load(mim, raw);
        using var backbone = new BeitVisionTransformer(Mim().ToBackbone(numClasses: 10));
        VitCheckpoint.Load(backbone, raw);
        mim.eval();
        backbone.eval();

        using var _ = inference_mode();
        var images = Images(Mim().ImgSize, batch: 3);
        using var expected = mim.ForwardFeatures(images, null, keepHidden: true);
        using var actual = backbone.ForwardFeatures(images, keepHidden: true);
        Assert.Equal(Mim().Depth, expected.Hidden.Count);
        Assert.Equal(expected.Hidden.Count, actual.Hidden.Count);
        for (var i = 0; i < expected.Hidden.Count; i++)
            AssertEqual(expected.Hidden[i], actual.Hidden[i], $"block {i} output");
        // Not a vacuous comparison: the blocks do change the tokens and the shared table is not zero.
        Assert.False(Same(expected.Hidden[0], expected.Hidden[^1]));
        Assert.True(raw["rel_pos_bias.relative_position_bias_table"].abs().max().item<float>() > 0);
    }

    [Fact]
    public void PretrainingCheckpointIntoPerLayerMimModelIsAClearError()
    {
        using var scope = NewDisposeScope();
        // unilm #1332: KeyError 'rel_pos_bias.relative_position_bias_table' when the model's relative
        // bias mode differs from the checkpoint's.
        using var model = new BeitMim(Mim() with { UseSharedRelPosBias = false, UseRelPosBias = true });
        var before = Snapshot(model);
        var e = Assert.Throws<CheckpointException>(() => MimCheckpoint.Load(model, Raw("mim")));
        Assert.Contains("shared relative position table", e.Message);
        Assert.Contains("use_shared_rel_pos_bias", e.Message);
        Assert.Contains("#1332", e.Message);
        Assert.Contains("rel_pos_bias.relative_position_bias_table", e.UnexpectedKeys);
        Assert.Contains("blocks.0.attn.relative_position_bias_table", e.MissingKeys);
        AssertWeightsEqual(before, model);
    }

    [Fact]
    public void PretrainingCheckpointIntoModelWithoutRelativeBiasIsRejected()
    {
        using var scope = NewDisposeScope();
        // Nothing in the fine-tune model can take the shared table: it must not be dropped silently.
        using var model = new BeitVisionTransformer(Mim().ToBackbone(10) with { UseRelPosBias = false });
        var e = Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, Raw("mim")));
        Assert.Equal(new[] { "rel_pos_bias.relative_position_bias_table" }, e.UnexpectedKeys);
    }
}
