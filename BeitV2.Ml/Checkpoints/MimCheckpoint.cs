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
        if (model.Config.UseSharedRelPosBias && !sd.ContainsKey("rel_pos_bias.relative_position_bias_table")
            && sd.ContainsKey("blocks.0.attn.relative_position_bias_table"))
            throw new CheckpointException(
                "This checkpoint has per-layer relative position tables, but the MIM model is configured with a shared table " +
                "(use_shared_rel_pos_bias). Build the model with use_rel_pos_bias instead (unilm issue #1332).");
        StateDictLoader.Load(model, sd, "BEiT v2 MIM model");
    }
}
