using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;

namespace BeitV2.Ml.Tests.Training;

/// <summary>Parameter groups, layer ids, lr scales and weight-decay exemptions against the reference rules (unilm beit2/optim_factory.py and its callers).</summary>
public class ParameterGroupTests
{
    private static ParameterGroup GroupOf(IReadOnlyList<ParameterGroup> groups, string name) =>
        groups.Single(g => g.ParameterNames.Contains(name));

    [Theory]
    [InlineData("cls_token", 0)]
    [InlineData("mask_token", 0)]
    [InlineData("pos_embed", 0)]
    [InlineData("patch_embed.proj.weight", 0)]
    [InlineData("blocks.0.attn.qkv.weight", 1)]
    [InlineData("blocks.11.mlp.fc2.bias", 12)]
    [InlineData("rel_pos_bias.relative_position_bias_table", 13)]
    [InlineData("fc_norm.weight", 13)]
    [InlineData("head.weight", 13)]
    [InlineData("cls_pt_layers.0.norm1.weight", 13)]
    public void VitLayerIds(string name, int id) => Assert.Equal(id, ParameterGroups.VitLayerId(name, depth: 12));

    [Theory]
    [InlineData("backbone.cls_token", 0)]
    [InlineData("backbone.pos_embed", 0)]
    [InlineData("backbone.patch_embed.proj.bias", 0)]
    [InlineData("backbone.blocks.3.attn.proj.weight", 4)]
    [InlineData("backbone.rel_pos_bias.relative_position_bias_table", 13)]
    [InlineData("backbone.fpn1.0.weight", 13)]
    [InlineData("decode_head.conv_seg.weight", 13)]
    [InlineData("auxiliary_head.convs.0.conv.weight", 13)]
    public void SegmentationLayerIds(string name, int id) => Assert.Equal(id, ParameterGroups.SegmentationLayerId(name, depth: 12));

    [Fact]
    public void LayerDecayScales_AreDecayToTheDistanceFromTheTop()
    {
        var s = ParameterGroups.LayerDecayScales(0.65, 12);
        Assert.Equal(14, s.Length);
        Assert.Equal(Math.Pow(0.65, 13), s[0], 15); // embeddings
        Assert.Equal(Math.Pow(0.65, 12), s[1], 15); // block 0
        Assert.Equal(0.65, s[12], 15);              // block 11
        Assert.Equal(1.0, s[13]);                   // head, norms
    }

    [Fact]
    public void FineTuning_GroupsLayerIdsScalesAndWeightDecay()
    {
        using var model = new BeitVisionTransformer(VitConfig.Micro() with { UseAbsPosEmb = true });
        var groups = ParameterGroups.ForFineTuning(model, weightDecay: 0.05, layerDecay: 0.5);
        var l = model.Depth; // 2 → ids 0..3

        void Check(string name, string group, int id, double wd)
        {
            var g = GroupOf(groups, name);
            Assert.Equal(group, g.Name);
            Assert.Equal(id, g.LayerId);
            Assert.Equal(Math.Pow(0.5, l + 1 - id), g.LrScale, 15);
            Assert.Equal(wd, g.WeightDecay);
        }

        Check("cls_token", "layer_0_no_decay", 0, 0);              // skip list
        Check("pos_embed", "layer_0_no_decay", 0, 0);              // skip list
        Check("patch_embed.proj.weight", "layer_0_decay", 0, 0.05);
        Check("patch_embed.proj.bias", "layer_0_no_decay", 0, 0);
        Check("blocks.0.attn.qkv.weight", "layer_1_decay", 1, 0.05);
        Check("blocks.0.attn.q_bias", "layer_1_no_decay", 1, 0);
        Check("blocks.0.attn.relative_position_bias_table", "layer_1_decay", 1, 0.05); // 2-D: decayed
        Check("blocks.1.gamma_1", "layer_2_no_decay", 2, 0);       // layer scale is 1-D
        Check("blocks.1.norm2.weight", "layer_2_no_decay", 2, 0);
        Check("fc_norm.weight", "layer_3_no_decay", 3, 0);
        Check("head.weight", "layer_3_decay", 3, 0.05);
        Check("head.bias", "layer_3_no_decay", 3, 0);
        Assert.Equal(model.parameters().Count(), groups.Sum(g => g.Parameters.Count));
        Assert.Equal("layer_0_no_decay", groups[0].Name); // dict order: first appearance (cls_token)

        var noRelDecay = ParameterGroups.ForFineTuning(model, 0.05, 0.5, disableWeightDecayOnRelPosBias: true);
        Assert.Equal(0, GroupOf(noRelDecay, "blocks.0.attn.relative_position_bias_table").WeightDecay);

        var noLayerDecay = ParameterGroups.ForFineTuning(model, 0.05, layerDecay: 1.0);
        Assert.Equal(new[] { "no_decay", "decay" }, noLayerDecay.Select(g => g.Name).Order(StringComparer.Ordinal).Reverse().ToArray());
        Assert.All(noLayerDecay, g => Assert.Equal(1.0, g.LrScale));
    }

    [Fact]
    public void Pretraining_MaskTokenAndSharedTableAreDecayed_ClsTokenIsNot()
    {
        using var model = new BeitMim(MimConfig.Micro());
        var groups = ParameterGroups.ForPretraining(model, 0.05);
        Assert.Equal(0, GroupOf(groups, "cls_token").WeightDecay);
        Assert.Equal(0.05, GroupOf(groups, "mask_token").WeightDecay);
        Assert.Equal(0.05, GroupOf(groups, "rel_pos_bias.relative_position_bias_table").WeightDecay);
        Assert.Equal(0.05, GroupOf(groups, "lm_head.weight").WeightDecay);
        Assert.Equal(0, GroupOf(groups, "lm_head.bias").WeightDecay);
        Assert.Equal(0, GroupOf(groups, "blocks.0.gamma_1").WeightDecay);
        Assert.All(groups, g => Assert.Equal(1.0, g.LrScale));
        Assert.All(groups, g => Assert.Null(g.LayerId));
    }

    [Fact]
    public void Tokenizer_FrozenCodebookExcluded_EncoderDecoderTokensExempt()
    {
        using var model = new VqkdTokenizer(VqkdConfig.Micro());
        var groups = ParameterGroups.ForTokenizer(model, 1e-4);
        var names = groups.SelectMany(g => g.ParameterNames).ToHashSet();
        Assert.DoesNotContain("quantize.embedding.weight", names);
        Assert.DoesNotContain("quantize.embedding.embed_avg", names);
        Assert.DoesNotContain("quantize.embedding.cluster_size", names);
        foreach (var n in new[] { "encoder.cls_token", "encoder.pos_embed", "decoder.cls_token", "decoder.pos_embed", "encode_task_layer.0.bias" })
            Assert.Equal(0, GroupOf(groups, n).WeightDecay);
        Assert.Equal(1e-4, GroupOf(groups, "encode_task_layer.0.weight").WeightDecay);
        Assert.Equal(1e-4, GroupOf(groups, "decoder.patch_embed.proj.weight").WeightDecay);
        var trainable = model.named_parameters().Count(p => p.parameter.requires_grad);
        Assert.Equal(trainable, names.Count);
    }

    [Fact]
    public void Segmentation_EveryGroupHasALayer_PrefixedClsTokenIsDecayed()
    {
        using var model = new BeitSegmenter(SegmentationConfig.Micro());
        var groups = ParameterGroups.ForSegmentation(model, 0.05, 0.9);
        var l = model.Config.Backbone.Depth; // 4
        var cls = GroupOf(groups, "backbone.cls_token");
        Assert.Equal(0, cls.LayerId);
        Assert.Equal(0.05, cls.WeightDecay); // the reference's ('pos_embed', 'cls_token') list does not match "backbone.cls_token"
        Assert.Equal(Math.Pow(0.9, l + 1), cls.LrScale, 15);
        var block = GroupOf(groups, "backbone.blocks.2.attn.qkv.weight");
        Assert.Equal(3, block.LayerId);
        Assert.Equal(Math.Pow(0.9, l + 1 - 3), block.LrScale, 15);
        var neckBn = GroupOf(groups, "backbone.fpn1.1.weight");
        Assert.Equal(l + 1, neckBn.LayerId);
        Assert.Equal(0, neckBn.WeightDecay);
        Assert.Equal(1.0, GroupOf(groups, "decode_head.conv_seg.weight").LrScale);
        Assert.Equal(0.05, GroupOf(groups, "decode_head.conv_seg.weight").WeightDecay);
        Assert.All(groups, g => Assert.NotNull(g.LayerId));
    }

    [Fact]
    public void GroupedOptimizer_LrIsScheduleTimesScale_WeightDecayPerGroup()
    {
        using var model = new BeitVisionTransformer(VitConfig.Micro());
        var groups = ParameterGroups.ForFineTuning(model, 0.05, 0.5);
        using var optimizer = new GroupedOptimizer(groups);
        optimizer.SetLearningRate(1e-3);
        for (var i = 0; i < groups.Count; i++)
        {
            Assert.Equal(1e-3 * groups[i].LrScale, optimizer.GroupLearningRate(i), 15);
            Assert.Equal(groups[i].WeightDecay, optimizer.GroupWeightDecay(i));
        }
    }
}
