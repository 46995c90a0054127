using BeitV2.Ml.Models.Layers;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Loads weights into a <see cref="BeitSegmenter"/> (as unilm beit2/semantic_segmentation/mmcv_custom/checkpoint.py does). Two kinds of source:
/// <list type="bullet">
/// <item>a whole segmenter: an official mmseg checkpoint (weights under 'state_dict'), a DDP file with
/// 'module.' prefixes, or our own package — keys start with <c>backbone.</c> / <c>decode_head.</c> /
/// <c>auxiliary_head.</c>. Every model key must be present (BatchNorm <c>num_batches_tracked</c> may
/// be missing, as mmcv tolerates); auxiliary-head keys are ignored when the model has no auxiliary head.</item>
/// <item>a BEiT v2 ViT checkpoint (pretraining or fine-tuning; keys without prefix) to initialise the
/// backbone only, as unilm's mmcv_custom/checkpoint.py does: a shared <c>rel_pos_bias</c> table is
/// copied into every layer, tables are resized to the model's grid (14×14 → 32×32 at 512 px) with
/// the reference algorithm, pos_embed is resized bicubically, and mask_token / lm_head / norm /
/// fc_norm / head / cls_pt_* keys are ignored. The necks and both heads keep their initial values.</item>
/// </list>
/// In both cases stored <c>relative_position_index</c> buffers are dropped and any remaining
/// mismatch is a <see cref="CheckpointException"/> naming the keys (the reference loads non-strictly
/// and only prints them).
/// </summary>
public static class SegmenterCheckpoint
{
    private static readonly string[] SegmenterPrefixes = { "backbone.", "decode_head.", "auxiliary_head." };
    private static readonly string[] ViTOnly =
        { "mask_token", "lm_head.", "norm.", "fc_norm.", "head.", "cls_pt_layers.", "cls_pt_norm.", "cls_pt_lm_head." };

    public static void Load(BeitSegmenter model, string path) => Load(model, StateDictFile.Read(path));

    public static void Load(BeitSegmenter model, IReadOnlyDictionary<string, Tensor> raw)
    {
        var sd = CheckpointKeys.Normalize(raw);
        if (sd.Keys.Any(k => SegmenterPrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal))))
            LoadSegmenter(model, sd);
        else
            LoadBackboneFromVit(model, sd);
    }

    /// <summary>Initialises only <paramref name="backbone"/>'s transformer from a BEiT v2 ViT state dict (keys without prefix); its necks keep their values.</summary>
    public static void LoadBackbone(BeitSegmentationBackbone backbone, IReadOnlyDictionary<string, Tensor> raw)
    {
        var sd = CheckpointKeys.Normalize(raw);
        PrepareBackbone(sd, backbone, prefix: "");
        StateDictLoader.Load(backbone, sd, "BEiT segmentation backbone",
            ignoreUnexpected: IsVitOnly,
            allowMissing: IsNeck);
    }

    /// <inheritdoc cref="LoadBackbone(BeitSegmentationBackbone, IReadOnlyDictionary{string, Tensor})"/>
    public static void LoadBackbone(BeitSegmentationBackbone backbone, string path) => LoadBackbone(backbone, StateDictFile.Read(path));

    private static void LoadSegmenter(BeitSegmenter model, Dictionary<string, Tensor> sd)
    {
        PrepareBackbone(sd, model.Backbone, prefix: "backbone.");
        var hasAux = model.AuxiliaryHead is not null;
        StateDictLoader.Load(model, sd, "BEiT segmenter",
            ignoreUnexpected: k => !hasAux && k.StartsWith("auxiliary_head.", StringComparison.Ordinal),
            allowMissing: k => k.EndsWith(".num_batches_tracked", StringComparison.Ordinal));
    }

    private static void LoadBackboneFromVit(BeitSegmenter model, Dictionary<string, Tensor> vit)
    {
        PrepareBackbone(vit, model.Backbone, prefix: "");
        var sd = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (k, v) in vit)
        {
            if (IsVitOnly(k)) continue;
            sd["backbone." + k] = v;
        }
        StateDictLoader.Load(model, sd, "BEiT segmenter backbone (from a ViT checkpoint)",
            allowMissing: k => !k.StartsWith("backbone.", StringComparison.Ordinal) || IsNeck(k["backbone.".Length..]));
    }

    private static bool IsVitOnly(string key) => ViTOnly.Any(p => key.StartsWith(p, StringComparison.Ordinal));

    private static bool IsNeck(string key) => key.StartsWith("fpn", StringComparison.Ordinal);

    /// <summary>Shared → per-layer tables, table and pos_embed resize; keys under <paramref name="prefix"/>.</summary>
    private static void PrepareBackbone(Dictionary<string, Tensor> sd, BeitSegmentationBackbone backbone, string prefix)
    {
        var c = backbone.Config;
        var target = backbone.state_dict();
        var sharedKey = prefix + "rel_pos_bias.relative_position_bias_table";
        if (c.UseRelPosBias && !c.UseSharedRelPosBias && sd.Remove(sharedKey, out var shared))
            for (var i = 0; i < c.Depth; i++)
                sd.TryAdd($"{prefix}blocks.{i}.attn.relative_position_bias_table", shared);

        var g = backbone.GridSize;
        foreach (var key in sd.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)
                                               && k.EndsWith("relative_position_bias_table", StringComparison.Ordinal)).ToList())
        {
            if (!target.TryGetValue(key[prefix.Length..], out var want) || want.shape.SequenceEqual(sd[key].shape)) continue;
            if (want.shape[1] != sd[key].shape[1]) continue; // head count differs: reported as a shape mismatch
            if (VitCheckpoint.TryWindowFromRows(sd[key].shape[0]) is not { } srcWindow) continue; // reported as a shape mismatch
            sd[key] = RelativePositionTableResizer.Resize(sd[key], srcWindow, (g, g));
        }

        if (sd.TryGetValue(prefix + "pos_embed", out var pos) && target.TryGetValue("pos_embed", out var wantPos)
            && !pos.shape.SequenceEqual(wantPos.shape))
            sd[prefix + "pos_embed"] = PositionEmbedding.Resize(pos, g, g); // as mmcv_custom/checkpoint.py: bicubic to the new grid
    }
}
