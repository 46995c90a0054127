using BeitV2.Ml.Models;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>Loads official pretraining (cls_pt) checkpoints and our own into <see cref="BeitMim"/>.</summary>
public static class MimCheckpoint
{
    public static void Load(BeitMim model, string path) => Load(model, StateDictFile.Read(path));

    public static void Load(BeitMim model, IReadOnlyDictionary<string, Tensor> raw)
    {
        var sd = CheckpointKeys.Normalize(raw);
        StateDictLoader.Load(model, sd, "BEiT v2 MIM model", hint: RelativeBiasModeHint(model.Config, sd));
    }

    /// <summary>
    /// Explains the most common mismatch (unilm issue #1332): the checkpoint's relative position bias
    /// mode (one shared table, as pretraining saves it, or a table per block) differs from the model's.
    /// </summary>
    private static string? RelativeBiasModeHint(MimConfig c, IReadOnlyDictionary<string, Tensor> sd)
    {
        var fileShared = sd.ContainsKey("rel_pos_bias.relative_position_bias_table");
        var filePerLayer = sd.ContainsKey("blocks.0.attn.relative_position_bias_table");
        if (c.UseSharedRelPosBias && !fileShared && filePerLayer)
            return "This checkpoint has per-layer relative position tables, but the MIM model is configured with a shared table " +
                   "(use_shared_rel_pos_bias). Build the model with use_rel_pos_bias instead (unilm issue #1332).";
        if (!c.UseSharedRelPosBias && fileShared)
            return "This checkpoint has a shared relative position table (rel_pos_bias.relative_position_bias_table, as MIM " +
                   "pretraining saves it), but the MIM model is configured " +
                   (c.UseRelPosBias ? "with per-layer tables (use_rel_pos_bias)" : "without relative position bias") +
                   ". Build it with use_shared_rel_pos_bias (unilm issue #1332); to fine-tune, load the checkpoint into a " +
                   "BeitVisionTransformer (MimConfig.ToBackbone), which copies the shared table into every block.";
        return null;
    }
}
