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

    private static string Minutes(PipelineState s, params string[] stages)
    {
        var minutes = stages.Sum(st => s.Stages.TryGetValue(st, out var r) ? r.Seconds : 0) / 60;
        return minutes is > 0 and < 0.05 ? "< 0.1" : minutes.ToString("F1", CultureInfo.InvariantCulture);
    }

    /// <summary>An integer setting of a stage's job config, or null when the preset leaves it to the trainer's default.</summary>
    private static int? Setting(PipelinePreset preset, string stage, string key) =>
        preset.Stages.Single(x => x.Name == stage).Config[key]?.GetValue<int>();

    private static string Count(int? n) => n?.ToString("N0", CultureInfo.InvariantCulture) ?? "all";

    private static int Codes(PipelinePreset preset) => Setting(preset, "tokenizer", "codebookSize") ?? 8192;

    private static string UsedCodes(PipelineState s, PipelinePreset preset) =>
        s.Stages.TryGetValue("tokenizer", out var r) && r.Metrics.TryGetValue("valCodebookUsage", out var usage)
            ? Math.Round(usage * Codes(preset)).ToString(CultureInfo.InvariantCulture) : "—";

    public static string Markdown(PipelineState s)
    {
        var preset = PipelinePreset.Get(s.Preset, s.Seed);
        string Train(string stage) => Count(Setting(preset, stage, "maxTrainImages"));
        string Held(string stage) => Count(Setting(preset, stage, "maxValImages"));
        var b = new StringBuilder();
        b.AppendLine($"Pipeline v{s.Version}, preset `{s.Preset}`, seed {s.Seed}. Accuracies on the first {Held("teacher")} images of the Fashion-MNIST " +
                     $"test split, mIoU on the first {Held("segmentation")} composed scenes of its test split. Each row is reproduced by " +
                     $"`dotnet run -c Release --project BeitV2.Web -- pipeline --preset {s.Preset} --seed {s.Seed} --until STAGE` " +
                     "with the row's last stage (earlier stages run first, or are reused from the same `--work` folder).");
        b.AppendLine();
        b.AppendLine("| stage | measure | value | minutes | `--until` |");
        b.AppendLine("|---|---|---|---|---|");
        void Row(string what, string measure, string value, params string[] stages) =>
            b.AppendLine($"| {what} | {measure} | {value} | {Minutes(s, stages)} | `{stages[^1]}` |");
        // A second measure of a stage already in the table: its minutes are counted once, in that row.
        void SameRun(string what, string measure, string value, string stage) =>
            b.AppendLine($"| {what} | {measure} | {value} | (above) | `{stage}` |");
        Row("convolutional teacher (supervised, stands in for CLIP)", "accuracy", Pct(s, "teacher"), "teacher");
        Row("VQ-KD tokenizer", $"codebook usage / perplexity / teacher-feature cosine (first {Held("tokenizer")} test images)",
            $"{Pct(s, "tokenizer", "valCodebookUsage")} ({UsedCodes(s, preset)} of {Codes(preset)} codes) / " +
            $"{Num(s, "tokenizer", "valPerplexity")} / {Num(s, "tokenizer", "valReconstructionCosine", "F3")}", "tokenizer");
        SameRun("VQ-KD tokenizer: what codes say about the class", $"class purity of codes, true / shuffled labels (first {Held("tokenizer")} test images)",
            $"{Num(s, "tokenizer", "valCodeClassPurity", "F3")} / {Num(s, "tokenizer", "valCodeClassPurityShuffled", "F3")}", "tokenizer");
        Row("MIM pretraining", "masked-token accuracy (final / aggregated head)",
            $"{Pct(s, "pretrain", "mimAccuracy")} / {Pct(s, "pretrain", "mimAccuracyAggregated")}", "pretrain");
        Row("linear probe (a) MIM [CLS]", "accuracy", Pct(s, "probe-mim-cls"), "probe-mim-cls");
        Row("linear probe (b) MIM mean pooling", "accuracy", Pct(s, "probe-mim-mean"), "probe-mim-mean");
        Row("linear probe (c) random backbone [CLS] / mean", "accuracy",
            $"{Pct(s, "probe-random-cls")} / {Pct(s, "probe-random-mean")}", "probe-random-cls", "probe-random-mean");
        Row($"fine-tune from MIM / from scratch (same budget: {Train("finetune-mim")} training images)", "accuracy",
            $"{Pct(s, "finetune-mim")} / {Pct(s, "finetune-scratch")}", "finetune-mim", "finetune-scratch");
        Row($"served classifier: fine-tune from MIM on {Train("classifier")} training images", "accuracy", Pct(s, "classifier"), "classifier");
        Row($"segmentation from the served classifier (MIM, then fine-tuned) / from scratch (same budget: {Train("segmentation")} scenes)", "mIoU",
            $"{Pct(s, "segmentation", "mIoU")} / {Pct(s, "segmentation-scratch", "mIoU")}", "segmentation", "segmentation-scratch");
        Row("linear probe (d) raw pixels", "accuracy", Pct(s, PipelinePreset.PixelProbeStage), PipelinePreset.PixelProbeStage);
        Row($"segmenter vs classifier on {PipelineRunner.AgreementItems.ToString("N0", CultureInfo.InvariantCulture)} isolated test items",
            "classifier right / segmenter right / agree",
            $"{Pct(s, PipelinePreset.AgreementStage, "classifierAccuracy")} / {Pct(s, PipelinePreset.AgreementStage, "segmenterAccuracy")} / " +
            $"{Pct(s, PipelinePreset.AgreementStage, "agreement")}", PipelinePreset.AgreementStage);
        b.AppendLine();
        b.AppendLine($"Total: {Minutes(s, s.Stages.Keys.ToArray())} minutes.");
        return b.ToString();
    }
}
