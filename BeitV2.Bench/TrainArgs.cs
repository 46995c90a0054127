using System.Globalization;
using BeitV2.Ml.Precision;

namespace BeitV2.Bench;

/// <summary>Command line of <c>train</c>; every run is bounded by step counts and <see cref="MaxSeconds"/>.</summary>
public sealed record TrainArgs
{
    public static readonly string[] AllStages = { "tokenizer", "pretrain", "probe", "finetune", "segmentation" };

    public IReadOnlyList<string> Stages { get; init; } = AllStages;
    /// <summary>"tiny", "base" or both, in that order.</summary>
    public IReadOnlyList<string> Models { get; init; } = new[] { "tiny", "base" };
    /// <summary>Images per step for every stage; null = the per-stage, per-preset default (<see cref="BatchFor"/>).</summary>
    public int? Batch { get; init; }
    /// <summary>Timed steps per stage; null = <see cref="StepsFor"/>.</summary>
    public int? Steps { get; init; }
    /// <summary>Untimed steps before the timed ones; null = <see cref="WarmupFor"/>.</summary>
    public int? Warmup { get; init; }
    /// <summary>Upper bound on one timed window; a window that reaches it stops after the step in progress.</summary>
    public double MaxSeconds { get; init; } = 600;
    /// <summary>Torch intra-op threads; 0 = number of cores.</summary>
    public int Threads { get; init; }
    /// <summary>Before each timed window, wait up to this long for other processes to leave the cores alone (0 = don't wait).</summary>
    public double WaitQuietSeconds { get; init; }
    public double QuietThreshold { get; init; } = 0.2;
    /// <summary>How often a timed window disturbed by other processes is repeated (with the same model, continuing training).</summary>
    public int Retries { get; init; }
    /// <summary>Trainer device: cpu, auto, cuda or cuda:N.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Mixed precision of the trainers: fp32, bf16 or fp16.</summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Fp32;

    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;

    /// <summary>Default batch: 16 (tiny) / 8 (base) images at 224 px; segmentation 8 (tiny, 256 px) / 2 (base, 512 px, the BatchNorm minimum).</summary>
    public int BatchFor(string stage, string model) =>
        Batch is { } b ? (stage == "segmentation" ? Math.Max(2, b) : b)
        : (stage, model) switch
        {
            ("segmentation", "base") => 2,
            ("segmentation", _) => 8,
            (_, "base") => 8,
            _ => 16,
        };

    /// <summary>Default timed steps: 5 (tiny), 3 (base), 2 (base segmentation, ~1 min per step).</summary>
    public int StepsFor(string stage, string model) =>
        Steps ?? (model == "tiny" ? 5 : stage == "segmentation" ? 2 : 3);

    /// <summary>Default warm-up: 2 (tiny), 1 (base).</summary>
    public int WarmupFor(string model) => Warmup ?? (model == "tiny" ? 2 : 1);

    public const string Usage = """
        usage: BeitV2.Bench train [options]

          --stage all|tokenizer|pretrain|probe|finetune|segmentation   stages to time, comma-separated (all)
          --model tiny|base|both     presets (both = tiny, then base)
          --batch N                  images per step for every stage (default per stage: tiny 16, base 8;
                                     segmentation tiny 8 at 256 px, base 2 at 512 px; at least 2 for segmentation)
          --steps N                  timed steps per stage (default tiny 5, base 3, base segmentation 2)
          --warmup K                 untimed steps before timing (default tiny 2, base 1); the first tokenizer
                                     step also runs the k-means codebook initialisation
          --max-seconds S            bound on one timed window; it stops after the step in progress (600)
          --threads N                torch intra-op threads (0 = cores)
          --wait-quiet S             before each timed window wait up to S s until other processes use < 0.2 cores (0)
          --retries R                repeat a timed window (up to R times) while other processes used > 0.2 cores during it (0)
          --device cpu|auto|cuda:N   the trainers' device (cpu); on CUDA each timed step ends with a device synchronisation
          --precision fp32|bf16|fp16 the trainers' mixed precision (fp32; fp16 adds dynamic loss scaling)

        Builds each model with random weights, feeds synthetic in-memory batches at the real input sizes to the
        real trainer classes (MaxSteps = warm-up + timed steps) and prints a markdown table of images/s.
        """;

    public static TrainArgs Parse(IReadOnlyList<string> args)
    {
        var a = new TrainArgs();
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Int() { var s = Next(); return int.TryParse(s, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : throw new ArgumentException($"{args[i - 1]}: '{s}' is not a non-negative integer."); }
            a = args[i] switch
            {
                "--stage" => a with { Stages = ParseStages(Next()) },
                "--model" => a with
                {
                    Models = Next() switch
                    {
                        "tiny" => new[] { "tiny" },
                        "base" => new[] { "base" },
                        "both" => new[] { "tiny", "base" },
                        var m => throw new ArgumentException($"--model must be tiny, base or both, not '{m}'."),
                    },
                },
                "--batch" => a with { Batch = Math.Max(1, Int()) },
                "--steps" => a with { Steps = Math.Max(1, Int()) },
                "--warmup" => a with { Warmup = Int() },
                "--max-seconds" => a with { MaxSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--threads" => a with { Threads = Int() },
                "--wait-quiet" => a with { WaitQuietSeconds = Int() },
                "--retries" => a with { Retries = Int() },
                "--device" => a with { Device = Next() },
                "--precision" => a with { Precision = ComputePrecisions.TryParse(Next(), out var p) ? p : throw new ArgumentException("--precision must be fp32, bf16 or fp16.") },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }
        return a;
    }

    private static IReadOnlyList<string> ParseStages(string s)
    {
        if (s == "all") return AllStages;
        var list = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var x in list)
            if (!AllStages.Contains(x)) throw new ArgumentException($"--stage: unknown stage '{x}' (all, {string.Join(", ", AllStages)}).");
        return AllStages.Where(list.Contains).ToList();
    }
}
