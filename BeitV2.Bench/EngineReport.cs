using System.Globalization;
using System.Text;
using BeitV2.Ml.Models;

namespace BeitV2.Bench;

/// <summary>The markdown of <c>perf</c>'s engine comparison: times, speed-ups, tokens/s and issue 17's targets.</summary>
public static class EngineReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Tables(IReadOnlyList<EngineBench.Case> cases, IReadOnlyList<string> engines, string? refusal)
    {
        var sb = new StringBuilder();
        void L(string line = "") => sb.AppendLine(line);
        string F(double v, string format = "0.0") => BenchMachine.F(v, format);
        string Cell(EngineBench.Case c, string e, Func<double, string> show) =>
            c.Missing.TryGetValue(e, out var why) ? why
            : c.Ms.ContainsKey(e) ? show(c.MedianPerImage(e)) + $" ({show(c.MinPerImage(e))})" : "–";
        bool Withheld(string e) => refusal is not null && EngineKeys.IsPyTorch(e);

        L("### Engines, per case (ms per image: median (min) over the repetitions)");
        L();
        if (refusal is not null) { L("PyTorch columns marked ⚠ ran on the netlib reference BLAS (see above): no ratio is drawn from them."); L(); }
        L($"| case | size | batch | reps | {string.Join(" | ", engines.Select(EngineKeys.Title))} | load avg before → after | other processes (cores) |");
        L($"|---|---|---:|---:|{string.Concat(engines.Select(_ => "---:|"))}---|---:|");
        foreach (var c in cases)
            L($"| {c.Kind} | {c.Size} | {c.Batch} | {c.Warmup}+{c.Reps} | {string.Join(" | ", engines.Select(e => Cell(c, e, v => F(v)) + (Withheld(e) && c.Ms.ContainsKey(e) ? " ⚠ netlib" : "")))} | {c.LoadBefore} → {c.LoadAfter} | {F(c.ForeignCores, "0.00")} |");
        L();
        foreach (var g in cases.GroupBy(c => (c.Kind, c.Size)))
            L($"- {g.Key.Kind} {g.Key.Size}: {g.First().Detail}");
        L();

        var others = engines.Where(e => e != EngineKeys.Anchor).ToList();
        if (engines.Contains(EngineKeys.Anchor))
        {
            L("### Speed-up over the naive ORT anchor (anchor median ÷ engine median; > 1: faster than the anchor)");
            L();
            L($"| case | size | batch | {string.Join(" | ", others.Select(EngineKeys.Title))} | ONNX ours ÷ TorchSharp |");
            L($"|---|---|---:|{string.Concat(others.Select(_ => "---:|"))}---:|");
            foreach (var c in cases)
                L($"| {c.Kind} | {c.Size} | {c.Batch} | {string.Join(" | ", others.Select(e => Withheld(e) ? "withheld" : Ratio(c.SpeedUp(e, EngineKeys.Anchor))))} | {Ratio(c.SpeedUp(EngineKeys.Onnx, EngineKeys.TorchSharp))} |");
            L();
        }
        var tok = cases.Where(c => c.Kind == "tokenizer").ToList();
        if (tok.Count > 0)
        {
            L("### Tokenizer throughput (tokens/s from the median; 196 tokens per 224 px image)");
            L();
            L($"| size | batch | {string.Join(" | ", engines.Select(EngineKeys.Title))} | ONNX ours ÷ TorchSharp |");
            L($"|---|---:|{string.Concat(engines.Select(_ => "---:|"))}---:|");
            foreach (var c in tok)
                L($"| {c.Size} | {c.Batch} | {string.Join(" | ", engines.Select(e => c.Missing.TryGetValue(e, out var why) ? why : F(c.TokensPerImage * 1000 / c.MedianPerImage(e), "0") + (Withheld(e) && c.Ms.ContainsKey(e) ? " ⚠ netlib" : "")))} | {Ratio(c.SpeedUp(EngineKeys.Onnx, EngineKeys.TorchSharp))} |");
            L();
        }
        return sb.ToString();
    }

    /// <summary>Issue 17's bench targets, each met or missed with its number, or why it has none.</summary>
    public static string Targets(IReadOnlyList<EngineBench.Case> cases)
    {
        var sb = new StringBuilder();
        string Mark(bool ok) => ok ? "met" : "**missed**";
        EngineBench.Case? Find(string kind, string size, int batch) => cases.FirstOrDefault(c => c.Kind == kind && c.Size == size && c.Batch == batch);
        string Why(EngineBench.Case? c, params string[] engines) => c is null ? "not run (that case was not in this run)"
            : string.Join("; ", engines.Where(e => !c.Ms.ContainsKey(e)).Select(e => $"{EngineKeys.Title(e)}: {c.Missing.GetValueOrDefault(e, "not run")}"));

        var cls8 = Find("classifier", "base", 8);
        var r = cls8?.SpeedUp(EngineKeys.Onnx, EngineKeys.Anchor) ?? double.NaN;
        sb.AppendLine(double.IsNaN(r)
            ? $"- Base classifier fp32, our ONNX ≥ 1.2× the naive ORT anchor at batch 8: no figure ({Why(cls8, EngineKeys.Onnx, EngineKeys.Anchor)})"
            : string.Create(Inv, $"- Base classifier fp32, our ONNX ≥ 1.2× the naive ORT anchor at batch 8: {r:0.00}× ({cls8!.MedianPerImage(EngineKeys.Anchor):0.0} → {cls8.MedianPerImage(EngineKeys.Onnx):0.0} ms/img): {Mark(r >= 1.2)}"));

        foreach (var batch in new[] { 1, 8 })
        {
            var t = Find("tokenizer", "base", batch);
            var tr = t?.SpeedUp(EngineKeys.Onnx, EngineKeys.TorchSharp) ?? double.NaN;
            sb.AppendLine(double.IsNaN(tr)
                ? $"- Base tokenizer tokens/s via ONNX ≥ 2× TorchSharp, batch {batch}: no figure ({Why(t, EngineKeys.Onnx, EngineKeys.TorchSharp)})"
                : string.Create(Inv, $"- Base tokenizer tokens/s via ONNX ≥ 2× TorchSharp, batch {batch}: {tr:0.00}× ({t!.TokensPerImage * 1000 / t.MedianPerImage(EngineKeys.TorchSharp):0} → {t.TokensPerImage * 1000 / t.MedianPerImage(EngineKeys.Onnx):0} tokens/s): {Mark(tr >= 2)}"));
        }

        var q = cls8?.SpeedUp(EngineKeys.OnnxInt8, EngineKeys.Anchor) ?? double.NaN;
        sb.AppendLine(double.IsNaN(q)
            ? $"- Base classifier int8 ≥ 2.5× the naive ORT fp32 anchor at batch 8: no figure ({Why(cls8, EngineKeys.OnnxInt8, EngineKeys.Anchor)})"
            : string.Create(Inv, $"- Base classifier int8 ≥ 2.5× the naive ORT fp32 anchor at batch 8: {q:0.00}× ({cls8!.MedianPerImage(EngineKeys.Anchor):0.0} → {cls8.MedianPerImage(EngineKeys.OnnxInt8):0.0} ms/img): {Mark(q >= 2.5)} ") +
                "(speed only: the ≥ 99 % top-1 agreement half of the target is measured by its own verb, not here)");
        return sb.ToString();
    }

    /// <summary>The issue-7 targets that read TorchSharp's own figures: the share of the matmul rate, and batch 1 against batch 8.</summary>
    public static string TorchSharpTargets(IReadOnlyList<EngineBench.Case> cases, double libtorchGflops, double fastestGflops)
    {
        var sb = new StringBuilder();
        string Mark(bool ok) => ok ? "met" : "**missed**";
        var b1 = cases.FirstOrDefault(c => c.Kind == "classifier" && c.Size == "base" && c.Batch == 1)?.MedianPerImage(EngineKeys.TorchSharp) ?? double.NaN;
        var b8 = cases.FirstOrDefault(c => c.Kind == "classifier" && c.Size == "base" && c.Batch == 8)?.MedianPerImage(EngineKeys.TorchSharp) ?? double.NaN;
        if (!double.IsNaN(b8) && !double.IsNaN(libtorchGflops))
        {
            var gflop = ClassifierGflop(VitConfig.Base(1000));
            var rate = gflop / (b8 / 1000);
            sb.AppendLine(string.Create(Inv, $"- TorchSharp Base forward at batch 8 reaches {rate:0} GFLOP/s ({gflop:0.0} GFLOP per image) = {100 * rate / libtorchGflops:0} % of libtorch's measured fp32 matmul rate {libtorchGflops:0} GFLOP/s, " +
                $"{100 * rate / fastestGflops:0} % of the fastest measured here ({fastestGflops:0} GFLOP/s) (issue 7: ≥ 80 %): {Mark(rate / libtorchGflops >= 0.8 && rate / fastestGflops >= 0.8)}"));
        }
        if (!double.IsNaN(b1) && !double.IsNaN(b8))
            sb.AppendLine(string.Create(Inv, $"- TorchSharp Base batch 1 per image = {b1 / b8:0.00}× batch 8 (issue 7: ≤ 1.20×): {Mark(b1 / b8 <= 1.2)}"));
        return sb.ToString();
    }

    /// <summary>Multiply-adds ×2 of the classifier forward per image (patch embedding, blocks, head).</summary>
    public static double ClassifierGflop(VitConfig c)
    {
        double n = c.NumPatches, t = n + 1, d = c.EmbedDim, h = d * c.MlpRatio;
        var block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * h;
        return (2 * n * d * 3 * c.PatchSize * c.PatchSize + c.Depth * block + 2 * d * c.NumClasses) / 1e9;
    }

    private static string Ratio(double v) => double.IsNaN(v) || double.IsInfinity(v) ? "–" : v.ToString("0.00", Inv) + "×";
}
