using System.Globalization;
using System.Text;

namespace BeitV2.Web.Pipeline;

/// <summary>The README's results table from a pipeline's state.</summary>
public static class PipelineReport
{
    private static string Pct(PipelineState s, string stage, string metric = "accuracy") =>
        s.Stages.TryGetValue(stage, out var r) && r.Metrics.TryGetValue(metric, out var v)
            ? (100 * v).ToString("F1", CultureInfo.InvariantCulture) + " %" : "—";

    private static string Num(PipelineState s, string stage, string metric, string format = "F1") =>
        s.Stages.TryGetValue(stage, out var r) && r.Metrics.TryGetValue(metric, out var v) ? v.ToString(format, CultureInfo.InvariantCulture) : "—";

    private static string Minutes(PipelineState s, params string[] stages) =>
        (stages.Sum(st => s.Stages.TryGetValue(st, out var r) ? r.Seconds : 0) / 60).ToString("F1", CultureInfo.InvariantCulture);

    public static string Markdown(PipelineState s)
    {
        var b = new StringBuilder();
        b.AppendLine($"Pipeline v{s.Version}, preset `{s.Preset}`, seed {s.Seed}; held-out figures on the Fashion-MNIST test split.");
        b.AppendLine();
        b.AppendLine("| stage | measure | value | minutes |");
        b.AppendLine("|---|---|---|---|");
        b.AppendLine($"| teacher (supervised, stands in for CLIP) | accuracy | {Pct(s, "teacher")} | {Minutes(s, "teacher")} |");
        b.AppendLine($"| VQ-KD tokenizer | codebook usage / perplexity / reconstruction cosine | {Pct(s, "tokenizer", "codebookUsage")} / " +
                     $"{Num(s, "tokenizer", "perplexity")} / {Num(s, "tokenizer", "reconstructionCosine", "F3")} | {Minutes(s, "tokenizer")} |");
        b.AppendLine($"| MIM pretraining | masked-token accuracy (final / aggregated head) | {Pct(s, "pretrain", "mimAccuracy")} / " +
                     $"{Pct(s, "pretrain", "mimAccuracyAggregated")} | {Minutes(s, "pretrain")} |");
        b.AppendLine($"| linear probe (a) MIM [CLS] | accuracy | {Pct(s, "probe-mim-cls")} | {Minutes(s, "probe-mim-cls")} |");
        b.AppendLine($"| linear probe (b) MIM mean pooling | accuracy | {Pct(s, "probe-mim-mean")} | {Minutes(s, "probe-mim-mean")} |");
        b.AppendLine($"| linear probe (c) random backbone [CLS] / mean | accuracy | {Pct(s, "probe-random-cls")} / {Pct(s, "probe-random-mean")} | " +
                     $"{Minutes(s, "probe-random-cls", "probe-random-mean")} |");
        b.AppendLine($"| linear probe (d) raw pixels | accuracy | {Pct(s, PipelinePreset.PixelProbeStage)} | {Minutes(s, PipelinePreset.PixelProbeStage)} |");
        b.AppendLine($"| fine-tune from MIM / from scratch (same budget) | accuracy | {Pct(s, "finetune-mim")} / {Pct(s, "finetune-scratch")} | " +
                     $"{Minutes(s, "finetune-mim", "finetune-scratch")} |");
        b.AppendLine($"| segmentation from MIM / from scratch (same budget) | mIoU | {Pct(s, "segmentation-mim", "mIoU")} / " +
                     $"{Pct(s, "segmentation-scratch", "mIoU")} | {Minutes(s, "segmentation-mim", "segmentation-scratch")} |");
        b.AppendLine();
        b.AppendLine($"Total: {Minutes(s, s.Stages.Keys.ToArray())} minutes.");
        return b.ToString();
    }
}
