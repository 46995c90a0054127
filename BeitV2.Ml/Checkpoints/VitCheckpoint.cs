using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Loads weights into a <see cref="BeitVisionTransformer"/> from an official unilm fine-tuned
/// checkpoint, a timm checkpoint (same key names), a pretraining (MIM) checkpoint, or our own
/// files. All key mapping for this model lives here (as in unilm beit2/run_class_finetuning.py: shared table copied per layer, tables resized).
/// </summary>
public static class VitCheckpoint
{
    private static readonly string[] PretrainingOnly = { "mask_token", "lm_head.", "norm.", "cls_pt_layers.", "cls_pt_norm.", "cls_pt_lm_head." };

    public static void Load(BeitVisionTransformer model, string path, bool allowHeadMismatch = false) =>
        Load(model, StateDictFile.Read(path), allowHeadMismatch);

    /// <param name="allowHeadMismatch">keep the model's freshly initialised head when the checkpoint's
    /// head has another number of classes (or none), as the reference fine-tuning script does.</param>
    public static void Load(BeitVisionTransformer model, IReadOnlyDictionary<string, Tensor> raw, bool allowHeadMismatch = false)
    {
        var c = model.Config;
        var sd = CheckpointKeys.Normalize(raw);
        var fromPretraining = sd.ContainsKey("mask_token") || sd.ContainsKey("lm_head.weight");
        var target = model.state_dict();

        // A shared (pretraining) table feeds every layer's own table.
        if (c.UseRelPosBias && sd.Remove("rel_pos_bias.relative_position_bias_table", out var shared))
            for (var i = 0; i < c.Depth; i++)
                sd.TryAdd($"blocks.{i}.attn.relative_position_bias_table", shared);

        // Tables for another resolution are resized with the reference's algorithm. Only the row count
        // may differ: a table with another head count (or not of a square window) is left as stored,
        // so that the mismatch report shows what the file holds.
        foreach (var key in sd.Keys.Where(k => k.EndsWith("relative_position_bias_table", StringComparison.Ordinal)).ToList())
        {
            var table = sd[key];
            if (!target.TryGetValue(key, out var want) || want.shape.SequenceEqual(table.shape)) continue;
            if (table.dim() != 2 || want.dim() != 2 || table.shape[1] != want.shape[1] || TryWindowFromRows(table.shape[0]) is not { } srcWindow)
                continue;
            try
            {
                sd[key] = RelativePositionTableResizer.Resize(table, srcWindow, (c.GridSize, c.GridSize));
            }
            catch (NotSupportedException e)
            {
                throw new CheckpointException($"Cannot resize {key} from a {srcWindow.H}x{srcWindow.W} to a {c.GridSize}x{c.GridSize} window: {e.Message}", e);
            }
        }

        // Absolute position embeddings: resized like run_class_finetuning.py (bicubic to the new grid),
        // again only when nothing but the grid differs.
        if (sd.TryGetValue("pos_embed", out var pos) && target.TryGetValue("pos_embed", out var wantPos) && !pos.shape.SequenceEqual(wantPos.shape)
            && pos.dim() == 3 && pos.shape[0] == 1 && pos.shape[2] == wantPos.shape[2] && IsSquare(pos.shape[1] - 1))
            sd["pos_embed"] = PositionEmbedding.Resize(pos, c.GridSize, c.GridSize);

        var headMismatch = allowHeadMismatch || fromPretraining;
        if (headMismatch)
            foreach (var k in new[] { "head.weight", "head.bias" })
                if (sd.TryGetValue(k, out var h) && (!target.TryGetValue(k, out var t) || !h.shape.SequenceEqual(t.shape)))
                    sd.Remove(k);

        StateDictLoader.Load(model, sd, "BEiT vision transformer",
            ignoreUnexpected: fromPretraining ? k => PretrainingOnly.Any(p => k.StartsWith(p, StringComparison.Ordinal)) : null,
            allowMissing: k => (headMismatch && k.StartsWith("head.", StringComparison.Ordinal))
                               || (fromPretraining && k.StartsWith("fc_norm.", StringComparison.Ordinal)));
    }

    /// <summary>The square G×G window of a table with (2G−1)² + 3 rows; null when the rows fit no such window.</summary>
    internal static (int H, int W)? TryWindowFromRows(long rows)
    {
        if (rows <= 3 || !IsSquare(rows - 3)) return null;
        var s = (int)Math.Round(Math.Sqrt(rows - 3));
        if (s % 2 == 0) return null;
        var g = (s + 1) / 2;
        return (g, g);
    }

    private static bool IsSquare(long n)
    {
        if (n <= 0) return false;
        var s = (long)Math.Round(Math.Sqrt(n));
        return s * s == n;
    }
}
