using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using TorchSharp;
using static BeitV2.TestSupport.CheckpointFixtures;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// Spec 2.9: a checkpoint trained at one resolution loads into a model built for another; relative
/// tables are resized with the unilm algorithm (extra rows kept), absolute position embeddings are
/// resized bicubically as run_class_finetuning does.
/// </summary>
public sealed class ResolutionChangeCheckpointTests
{
    [Fact]
    public void RelativeTablesAreResizedForALargerInput()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        var config = VitCls() with { ImgSize = 96 };
        Assert.Equal(6, config.GridSize);
        using var model = new BeitVisionTransformer(config);
        VitCheckpoint.Load(model, raw);

        var sd = model.state_dict();
        for (var i = 0; i < config.Depth; i++)
        {
            var key = $"blocks.{i}.attn.relative_position_bias_table";
            var original = raw[key];
            Assert.Equal(new long[] { 52, 4 }, original.shape);
            var loaded = sd[key];
            Assert.Equal(new long[] { 124, 4 }, loaded.shape);
            AssertEqual(RelativePositionTableResizer.Resize(original, (4, 4), (6, 6)), loaded, key);
            AssertEqual(original[^3..], loaded[^3..], key + " extra-token rows");
            // The zero offset sits at the centre of both grids and keeps its value.
            AssertEqual(original[24], loaded[60], key + " zero offset");
        }
        // Everything that does not depend on the grid is loaded unchanged.
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model, k => !k.EndsWith("relative_position_bias_table", StringComparison.Ordinal));

        model.eval();
        using var _ = inference_mode();
        var logits = model.forward(Images(96));
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        Assert.False(logits.isnan().any().item<bool>());
        // The 64 px model refuses 96 px input, so the resized model is what makes this possible.
        using var small = new BeitVisionTransformer(VitCls());
        Assert.Throws<ArgumentException>(() => small.forward(Images(96)));
    }

    [Fact]
    public void RelativeTablesAreResizedForASmallerInput()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        // 4×4 → 3×3 window: 52 → 28 rows.
        using var model = new BeitVisionTransformer(VitCls() with { ImgSize = 48 });
        VitCheckpoint.Load(model, raw);
        var loaded = model.state_dict()["blocks.1.attn.relative_position_bias_table"];
        var original = raw["blocks.1.attn.relative_position_bias_table"];
        AssertEqual(RelativePositionTableResizer.Resize(original, (4, 4), (3, 3)), loaded, "table");
        AssertEqual(original[^3..], loaded[^3..], "extra-token rows");
        model.eval();
        using var _ = inference_mode();
        Assert.Equal(new long[] { 2, 10 }, model.forward(Images(48)).shape);
    }

    [Fact]
    public void SharedPretrainingTableIsExpandedThenResized()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("mim");
        var config = Mim().ToBackbone(numClasses: 3) with { ImgSize = 96 };
        using var model = new BeitVisionTransformer(config);
        VitCheckpoint.Load(model, raw);
        var expected = RelativePositionTableResizer.Resize(raw["rel_pos_bias.relative_position_bias_table"], (4, 4), (6, 6));
        var sd = model.state_dict();
        for (var i = 0; i < config.Depth; i++)
            AssertEqual(expected, sd[$"blocks.{i}.attn.relative_position_bias_table"], $"block {i}");
    }

    /// <summary>The VQ-KD encoder (absolute position embedding) taken out of the tokenizer file and loaded at 96 px.</summary>
    [Theory]
    [InlineData(96)]
    [InlineData(32)]
    public void AbsolutePositionEmbeddingIsInterpolated(int imgSize)
    {
        using var scope = NewDisposeScope();
        var encoderConfig = Config<VqkdConfig>("vqkd").Encoder;
        Assert.True(encoderConfig.UseAbsPosEmb);
        var encoder = CheckpointKeys.SubTree(Raw("vqkd"), "encoder.");
        var config = encoderConfig with { ImgSize = imgSize };
        using var model = new BeitVisionTransformer(config);
        VitCheckpoint.Load(model, encoder);

        var original = encoder["pos_embed"];
        var g = encoderConfig.GridSize;
        var gNew = config.GridSize;
        var loaded = model.state_dict()["pos_embed"];
        Assert.Equal(new long[] { 1, gNew * gNew + 1, encoderConfig.EmbedDim }, loaded.shape);
        // run_class_finetuning: interpolate(size=(new, new), mode='bicubic', align_corners=False) of the
        // patch grid; the [CLS] entry is kept.
        var grid = original[.., 1..].reshape(1, g, g, -1).permute(0, 3, 1, 2);
        var resized = nn.functional.interpolate(grid, size: new long[] { gNew, gNew }, mode: InterpolationMode.Bicubic, align_corners: false);
        var expected = cat(new[] { original[.., ..1], resized.permute(0, 2, 3, 1).reshape(1, gNew * gNew, -1) }, 1);
        AssertEqual(expected, loaded, "pos_embed");
        AssertWeightsEqual(CheckpointKeys.Normalize(encoder), model, k => k != "pos_embed");

        model.eval();
        using var _ = inference_mode();
        using var output = model.ForwardFeatures(Images(imgSize));
        Assert.Equal(new long[] { 2, gNew * gNew + 1, encoderConfig.EmbedDim }, output.Tokens.shape);
        Assert.False(output.Tokens.isnan().any().item<bool>());
    }

    [Fact]
    public void UnchangedResolutionLoadsTablesAndPositionsBitForBit()
    {
        using var scope = NewDisposeScope();
        var encoder = CheckpointKeys.SubTree(Raw("vqkd"), "encoder.");
        using var model = new BeitVisionTransformer(Config<VqkdConfig>("vqkd").Encoder);
        VitCheckpoint.Load(model, encoder);
        AssertWeightsEqual(CheckpointKeys.Normalize(encoder), model);
    }
}
