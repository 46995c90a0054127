using System.Globalization;

namespace BeitV2.Bench;

/// <summary>Command line of <c>perf</c>: which presets and parts to run, and where the PyTorch reference is.</summary>
public sealed record PerfArgs
{
    public static readonly string[] AllParts = { "matmul", "engines", "train", "http", "memory" };
    /// <summary>Training steps take ~10 min on their own and are not issue 17's: opt-in.</summary>
    public static readonly string[] DefaultParts = { "matmul", "engines", "http", "memory" };

    /// <summary>Presets (sizes): base, tiny.</summary>
    public IReadOnlyList<string> Models { get; init; } = new[] { "base", "tiny" };
    public IReadOnlyList<string> Parts { get; init; } = DefaultParts;
    /// <summary>Engine comparison: which models (classifier, tokenizer, segmenter).</summary>
    public IReadOnlyList<string> Cases { get; init; } = EngineBench.Kinds;
    public IReadOnlyList<int> Batches { get; init; } = new[] { 1, 8 };
    /// <summary>Engine comparison: repetitions per engine and case; null = per case (fewer for Base).</summary>
    public int? Reps { get; init; }
    public IReadOnlyList<string> Engines { get; init; } = EngineKeys.Default;
    /// <summary>Pause between two engines' forwards, so that none pays for another's thread spin-down.</summary>
    public int SettleMs { get; init; } = 200;
    /// <summary>Also the Base segmenter at batch 8 (512 px; minutes per repetition).</summary>
    public bool Heavy { get; init; }
    /// <summary>Before each engine case, wait up to this long for other processes to use &lt; 0.2 cores (0 = don't wait).</summary>
    public int WaitQuietSeconds { get; init; }
    /// <summary>Inference:Engine of the servers of the http part (passed as Inference__Engine); null = the server's default.</summary>
    public string? Engine { get; init; }
    /// <summary>Torch intra-op threads of both sides (and OPENBLAS/OMP threads of the Python side); 0 = cores.</summary>
    public int Threads { get; init; }
    /// <summary>Matmul rounds; each round runs the C# side, then the PyTorch side; medians over rounds.</summary>
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

    public EngineBench.Settings EngineSettings => new(Models, Cases, Batches, NoPython ? Engines.Where(e => !EngineKeys.IsPyTorch(e) && e != EngineKeys.Anchor).ToList() : Engines,
        Reps, EffectiveThreads, SettleMs, Heavy, Quick, Python, WaitQuietSeconds);

    public const string Usage = """
        usage: BeitV2.Bench perf [options]

          --sizes base,tiny          presets (both); --model base|tiny|both says the same
          --parts LIST               any of matmul,engines,train,http,memory (matmul,engines,http,memory)
          --cases LIST               engine comparison: any of classifier,tokenizer,segmenter (all)
          --batches LIST             engine comparison: batch sizes (1,8)
          --reps N                   engine comparison: repetitions per engine (Base 9 at batch 1, 5 at 8; tiny 15 / 6;
                                     Base segmenter 2); each repetition runs every engine once, in rotating order
          --engines LIST             any of anchor,onnx,onnx-int8,torch,pytorch,pytorch-spin (all but pytorch-spin)
          --precisions LIST          fp32,int8 (both): int8 = the onnx-int8 engine
          --pytorch-spinning         also PyTorch with libgomp's default spin-waiting (engine pytorch-spin), labelled
          --heavy                    also the Base segmenter at batch 8 (512 px: ~2 min per engine and repetition)
          --settle-ms MS             pause between two engines' forwards (200)
          --wait-quiet S             before each engine case wait up to S s until other processes use < 0.2 cores (0)
          --threads N                threads of every engine: torch intra-op, ORT intra-op, OpenBLAS (0 = cores)
          --rounds R                 rounds of the matmul cases, C# then PyTorch in each; medians (1)
          --batched B:W              Inference:MaxBatch:MaxWaitMs of the batched server (8:0, the defaults; MaxGatherMs stays 100)
          --engine onnx|torch        Inference:Engine of the http part's servers (Inference__Engine; the server's default)
          --python PATH              interpreter with Debian's python3-torch (/usr/bin/python3)
          --no-python                no PyTorch engines, no anchor, no ratios against PyTorch
          --fixtures DIR             official fixtures the PyTorch models must reproduce first (../shared/fixtures/reference)
          --quick                    fewest repetitions: checks that every case runs
          --out FILE                 also write the markdown report to FILE

        The engine comparison runs each case in the naive ONNX Runtime anchor (the PyTorch reference exported by
        torch.onnx.export, opset 17, ORT defaults), our ONNX export (fp32, int8), our TorchSharp model and PyTorch
        eager (OMP_WAIT_POLICY=PASSIVE), taking turns; medians. Ratios against PyTorch are refused while
        libblas.so.3 is the netlib reference BLAS (apt-get install libopenblas0-pthread).
        Then HTTP latency/throughput and peak memory of the real server; a markdown report with the targets.
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
                "--sizes" => a with { Models = List(Next(), new[] { "base", "tiny" }, "--sizes") },
                "--parts" => a with { Parts = ParseParts(Next()) },
                "--cases" => a with { Cases = List(Next(), EngineBench.Kinds, "--cases") },
                "--batches" => a with { Batches = ParseBatches(Next()) },
                "--reps" => a with { Reps = Math.Max(1, Int()) },
                "--engines" => a with { Engines = EngineKeys.All.Intersect(List(Next(), EngineKeys.All, "--engines")).ToList() },
                "--precisions" => a with { Engines = Precisions(a.Engines, List(Next(), new[] { "fp32", "int8" }, "--precisions")) },
                "--pytorch-spinning" => a with { Engines = EngineKeys.All.Where(e => a.Engines.Contains(e) || e == EngineKeys.PyTorchSpinning).ToList() },
                "--heavy" => a with { Heavy = true },
                "--settle-ms" => a with { SettleMs = Int() },
                "--wait-quiet" => a with { WaitQuietSeconds = Int() },
                "--engine" => a with { Engine = Next() is var e && e is "onnx" or "torch" ? e : throw new ArgumentException($"--engine must be onnx or torch, not '{e}'.") },
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

    private static IReadOnlyList<string> List(string s, IReadOnlyList<string> allowed, string option)
    {
        var items = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
        if (items.Count == 0 || items.Except(allowed).Any())
            throw new ArgumentException($"{option} takes any of {string.Join(',', allowed)}, not '{s}'.");
        return items;
    }

    private static IReadOnlyList<int> ParseBatches(string s)
    {
        var items = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var batches = items.Select(x => int.TryParse(x, CultureInfo.InvariantCulture, out var b) && b is >= 1 and <= 64 ? b : -1).Distinct().ToList();
        if (batches.Count == 0 || batches.Contains(-1)) throw new ArgumentException($"--batches takes batch sizes 1..64 (e.g. 1,8), not '{s}'.");
        return batches;
    }

    /// <summary>fp32 keeps every engine but onnx-int8; int8 keeps onnx-int8 and the fp32 anchor it is measured against.</summary>
    private static IReadOnlyList<string> Precisions(IReadOnlyList<string> engines, IReadOnlyList<string> precisions) =>
        engines.Where(e => e == EngineKeys.OnnxInt8 ? precisions.Contains("int8") : precisions.Contains("fp32") || e == EngineKeys.Anchor).ToList();

    private static IReadOnlyList<string> ParseParts(string s)
    {
        // "forward" was the TorchSharp-against-PyTorch part that the engine comparison replaced.
        var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(p => p == "forward" ? "engines" : p).Distinct().ToArray();
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
