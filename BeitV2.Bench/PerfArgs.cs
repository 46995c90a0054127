using System.Globalization;

namespace BeitV2.Bench;

/// <summary>Command line of <c>perf</c>: which presets and parts to run, and where the PyTorch reference is.</summary>
public sealed record PerfArgs
{
    public static readonly string[] AllParts = { "matmul", "forward", "train", "http", "memory" };

    public IReadOnlyList<string> Models { get; init; } = new[] { "base", "tiny" };
    public IReadOnlyList<string> Parts { get; init; } = AllParts;
    /// <summary>Torch intra-op threads of both sides (and OPENBLAS/OMP threads of the Python side); 0 = cores.</summary>
    public int Threads { get; init; }
    /// <summary>Forward and matmul rounds; each round runs the C# side, then the PyTorch side; medians over rounds.</summary>
    public int Rounds { get; init; } = 1;
    public string Python { get; init; } = "/usr/bin/python3";
    public bool NoPython { get; init; }
    /// <summary>The official fixtures the Python models are checked against before timing; null = look for ../shared/fixtures/reference.</summary>
    public string? Fixtures { get; init; }
    /// <summary>Fewest repetitions: a smoke run that every case works, not figures to publish.</summary>
    public bool Quick { get; init; }
    /// <summary>Inference:MaxBatch:MaxWaitMs of the batched server.</summary>
    public BenchMode Batched { get; init; } = new(8, 0);
    public string? Out { get; init; }

    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;
    public bool Has(string part) => Parts.Contains(part);

    public const string Usage = """
        usage: BeitV2.Bench perf [options]

          --model base|tiny|both     presets (both)
          --parts LIST               any of matmul,forward,train,http,memory (all)
          --threads N                torch threads of both sides (0 = cores)
          --rounds R                 rounds of the matmul and forward cases, C# then PyTorch in each; medians (1)
          --batched B:W              Inference:MaxBatch:MaxWaitMs of the batched server (8:0, the defaults; MaxGatherMs stays 100)
          --python PATH              interpreter with Debian's python3-torch (/usr/bin/python3)
          --no-python                C# figures only (no ratios)
          --fixtures DIR             official fixtures the PyTorch models must reproduce first (../shared/fixtures/reference)
          --quick                    fewest repetitions: checks that every case runs
          --out FILE                 also write the markdown report to FILE

        Times the same BEiT v2 model cases in TorchSharp and in PyTorch (BeitV2.Bench/reference/*.py,
        checked against the official fixtures), plus HTTP latency/throughput and peak memory of the
        real server, and prints a markdown report with ratios and the issue's targets.
        """;

    public static PerfArgs Parse(IReadOnlyList<string> args)
    {
        var a = new PerfArgs();
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Int() { var s = Next(); return int.TryParse(s, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : throw new ArgumentException($"{args[i - 1]}: '{s}' is not a non-negative integer."); }
            a = args[i] switch
            {
                "--model" => a with
                {
                    Models = Next() switch
                    {
                        "both" => new[] { "base", "tiny" },
                        "base" => new[] { "base" },
                        "tiny" => new[] { "tiny" },
                        var m => throw new ArgumentException($"--model must be base, tiny or both, not '{m}'."),
                    },
                },
                "--parts" => a with { Parts = ParseParts(Next()) },
                "--threads" => a with { Threads = Int() },
                "--rounds" => a with { Rounds = Math.Max(1, Int()) },
                "--batched" => a with { Batched = ParseMode(Next()) },
                "--python" => a with { Python = Next() },
                "--no-python" => a with { NoPython = true },
                "--fixtures" => a with { Fixtures = Next() },
                "--quick" => a with { Quick = true },
                "--out" => a with { Out = Next() },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }
        return a;
    }

    private static IReadOnlyList<string> ParseParts(string s)
    {
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var unknown = parts.Except(AllParts).ToList();
        if (unknown.Count > 0 || parts.Length == 0)
            throw new ArgumentException($"--parts takes any of {string.Join(',', AllParts)}, not '{s}'.");
        return parts;
    }

    private static BenchMode ParseMode(string s)
    {
        var kv = s.Split(':');
        if (kv.Length != 2 || !int.TryParse(kv[0], out var b) || !int.TryParse(kv[1], out var w) || b < 2 || w < 0)
            throw new ArgumentException($"--batched takes MaxBatch:MaxWaitMs with MaxBatch ≥ 2 (e.g. 8:10), not '{s}'.");
        return new BenchMode(b, w);
    }
}
