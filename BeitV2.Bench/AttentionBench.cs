using System.Globalization;
using BeitV2.Ml;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;

namespace BeitV2.Bench;

/// <summary>
/// <c>attention [--model base|tiny] [--rounds 3] [--threads 2]</c>: the classifier's forward at batch 1 and 8 with
/// the fused inference attention off and on (<see cref="Attention.UseFusedInference"/>), alternating rounds so
/// that drift of a shared machine hits both alike; prints per-round ms/image and the medians as markdown.
/// </summary>
public static class AttentionBench
{
    public const string Usage = "attention [--model base|tiny] [--rounds 3] [--threads 2]";

    public static int Run(IReadOnlyList<string> args)
    {
        string model = "base";
        int rounds = 3, threads = Environment.ProcessorCount;
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--model": model = Next() is var m && m is "base" or "tiny" ? m : throw new ArgumentException("--model must be base or tiny"); break;
                case "--rounds": rounds = Math.Max(1, int.Parse(Next(), CultureInfo.InvariantCulture)); break;
                case "--threads": threads = Math.Max(1, int.Parse(Next(), CultureInfo.InvariantCulture)); break;
                default: throw new ArgumentException($"Unknown option {args[i]}.");
            }
        }
        TorchRuntime.ConfigureThreads(threads);
        using var vit = new BeitVisionTransformer(model == "base" ? VitConfig.Base(1000) : VitConfig.Tiny(1000));
        vit.eval();
        Console.WriteLine($"## Fused inference attention, {model}, {threads} threads, fp32, ms per image (classifier forward as the server runs it)");
        Console.WriteLine();
        Console.WriteLine("| batch | explicit (per round) | fused (per round) | explicit median | fused median | fused / explicit |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var previous = Attention.UseFusedInference;
        try
        {
            foreach (var batch in new[] { 1, 8 })
            {
                var runs = model == "base" ? (batch == 1 ? 8 : 3) : (batch == 1 ? 40 : 10);
                var times = new Dictionary<bool, List<double>> { [false] = [], [true] = [] };
                for (var round = 0; round < rounds; round++)
                    foreach (var fused in new[] { false, true })
                    {
                        Attention.UseFusedInference = fused;
                        times[fused].Add(TorchForward.Measure(vit, batch, runs, TimeSpan.FromMinutes(5)).MsPerImage);
                    }
                double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
                string Row(List<double> x) => string.Join(" / ", x.Select(v => v.ToString("F0", CultureInfo.InvariantCulture)));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {batch} | {Row(times[false])} | {Row(times[true])} | {Median(times[false]):F0} | {Median(times[true]):F0} | {Median(times[true]) / Median(times[false]):F2} |"));
            }
        }
        finally
        {
            Attention.UseFusedInference = previous;
        }
        return 0;
    }
}
