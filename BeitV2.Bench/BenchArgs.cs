using System.Globalization;
using BeitV2.Ml.Precision;

namespace BeitV2.Bench;

/// <summary>One server configuration to measure: Inference:MaxBatch and Inference:MaxWaitMs.</summary>
public sealed record BenchMode(int MaxBatch, int MaxWaitMs)
{
    public string Name => MaxBatch == 1 ? "unbatched" : $"batched ≤{MaxBatch}, wait {MaxWaitMs} ms";
}

/// <summary>Command line of <c>serve</c>; every loop the bench runs is bounded by these counts and <see cref="MaxSeconds"/>.</summary>
public sealed record BenchArgs
{
    public string Model { get; init; } = "base";
    public int Clients { get; init; } = 8;
    /// <summary>Sequential single-image requests timed per mode (after the warm-up).</summary>
    public int Requests { get; init; } = 30;
    /// <summary>Single-image requests sent in total by the concurrent clients per mode; 0 = 16 per client.</summary>
    public int ConcurrentRequests { get; init; }
    public int Warmup { get; init; } = 3;
    /// <summary>Upper bound on each measured phase; a phase that hits it reports what it completed.</summary>
    public double MaxSeconds { get; init; } = 180;
    public IReadOnlyList<BenchMode> Modes { get; init; } = new[] { new BenchMode(1, 0), new BenchMode(8, 10), new BenchMode(8, 25) };
    /// <summary>Torch threads for the server and the torch-only timing; 0 = number of cores.</summary>
    public int Threads { get; init; }
    public string Device { get; init; } = "cpu";
    /// <summary>Ml:InferencePrecision of the server and the precision of the torch-only forward.</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>An image file to send; null = a generated 640×480 JPEG.</summary>
    public string? Image { get; init; }
    /// <summary>Torch-only forward repetitions at batch 1 and at batch 8.</summary>
    public int ForwardRuns1 { get; init; } = 10;
    public int ForwardRuns8 { get; init; } = 3;
    public bool KeepData { get; init; }
    /// <summary>Inference:Engine of every server (onnx | torch), passed as Inference__Engine; null = the server's default.</summary>
    public string? Engine { get; init; }
    /// <summary>Engines whose peak RSS with the Base classifier, tokenizer and segmenter loaded is measured, each on a fresh server ("default" = the server's own choice).</summary>
    public IReadOnlyList<string> RssEngines { get; init; } = Array.Empty<string>();
    /// <summary>Before each measured phase, wait up to this long for other processes to leave the cores alone (0 = don't wait).</summary>
    public double WaitQuietSeconds { get; init; }
    /// <summary>Cores other processes may use for the machine to count as quiet.</summary>
    public double QuietThreshold { get; init; } = 0.2;
    /// <summary>How often a phase disturbed by other processes (above the threshold) is run again.</summary>
    public int Retries { get; init; }

    public int TotalConcurrent => ConcurrentRequests > 0 ? ConcurrentRequests : 16 * Clients;
    public int EffectiveThreads => Threads > 0 ? Threads : Environment.ProcessorCount;

    public const string Usage = """
        usage: BeitV2.Bench serve [options]

          --model base|tiny          BEiT v2 ViT-B/16 or ViT-Ti/16 classifier, 224 px, 1000 classes, random weights (base)
          --clients N                concurrent clients in the throughput phase (8)
          --requests N               sequential single-image requests timed per mode (30)
          --concurrent-requests N    requests sent by all clients together per mode (16 × clients)
          --warmup K                 untimed sequential requests per mode before timing (3)
          --modes LIST               MaxBatch:MaxWaitMs pairs, or none for the torch-only timing (1:0,8:10,8:25)
          --max-seconds S            bound on each measured phase (180)
          --threads N                torch intra-op threads, server and torch-only timing (0 = cores)
          --device cpu|auto|cuda:N   Ml:Device of the server and device of the torch-only forward (cpu)
          --precision fp32|bf16|fp16 Ml:InferencePrecision of the server and of the torch-only forward (fp32; fp16 needs CUDA)
          --image PATH               image to send (a generated 640×480 JPEG)
          --forward-runs N1,N8       torch-only forward repetitions at batch 1 and 8 (10,3)
          --wait-quiet S             before each phase wait up to S s until other processes use < 0.2 cores (0)
          --retries R                run a phase again (up to R times) while other processes used > 0.2 cores during it (0)
          --keep-data                keep the temporary data directory
          --engine onnx|torch        Inference:Engine of the servers, passed as Inference__Engine (the server's default)
          --rss LIST                 also the peak RSS (VmHWM) of a fresh server with the Base classifier, tokenizer and
                                     segmenter as defaults, after its start-up warm-up of all three, once per engine:
                                     any of torch,onnx,default (e.g. torch,onnx to compare; ~3 min each)

        Starts BeitV2.Web as a child process on 127.0.0.1 once per mode and prints markdown tables.
        On Linux each phase also reports the CPU that other processes used meanwhile (from /proc).
        """;

    public static BenchArgs Parse(IReadOnlyList<string> args)
    {
        var a = new BenchArgs();
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Int() { var s = Next(); return int.TryParse(s, CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : throw new ArgumentException($"{args[i - 1]}: '{s}' is not a non-negative integer."); }
            a = args[i] switch
            {
                "--model" => a with { Model = Next() is var m && m is "base" or "tiny" ? m : throw new ArgumentException($"--model must be base or tiny, not '{m}'.") },
                "--clients" => a with { Clients = Math.Max(1, Int()) },
                "--requests" => a with { Requests = Math.Max(1, Int()) },
                "--concurrent-requests" => a with { ConcurrentRequests = Int() },
                "--warmup" => a with { Warmup = Int() },
                "--modes" => a with { Modes = ParseModes(Next()) },
                "--max-seconds" => a with { MaxSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--threads" => a with { Threads = Int() },
                "--device" => a with { Device = Next() },
                "--precision" => a with { Precision = BeitV2.Ml.Precision.ComputePrecisions.TryParse(Next(), out var p) ? p.Name() : throw new ArgumentException("--precision must be fp32, bf16 or fp16.") },
                "--image" => a with { Image = Next() },
                "--forward-runs" => ParseRuns(a, Next()),
                "--keep-data" => a with { KeepData = true },
                "--engine" => a with { Engine = Next() is var e && e is "onnx" or "torch" ? e : throw new ArgumentException($"--engine must be onnx or torch, not '{e}'.") },
                "--rss" => a with { RssEngines = ParseEngines(Next()) },
                "--wait-quiet" => a with { WaitQuietSeconds = Int() },
                "--retries" => a with { Retries = Int() },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }
        return a;
    }

    private static IReadOnlyList<string> ParseEngines(string s)
    {
        var items = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
        if (items.Count == 0 || items.Any(e => e is not ("onnx" or "torch" or "default")))
            throw new ArgumentException($"--rss takes any of torch,onnx,default, not '{s}'.");
        return items;
    }

    private static BenchArgs ParseRuns(BenchArgs a, string s)
    {
        var parts = s.Split(',');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var r1) || !int.TryParse(parts[1], out var r8) || r1 < 0 || r8 < 0)
            throw new ArgumentException($"--forward-runs takes N1,N8 (e.g. 10,3), not '{s}'.");
        return a with { ForwardRuns1 = r1, ForwardRuns8 = r8 };
    }

    private static IReadOnlyList<BenchMode> ParseModes(string s) => s == "none" ? Array.Empty<BenchMode>() : s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Select(p =>
        {
            var kv = p.Split(':');
            if (kv.Length != 2 || !int.TryParse(kv[0], out var b) || !int.TryParse(kv[1], out var w) || b < 1 || w < 0)
                throw new ArgumentException($"--modes takes MaxBatch:MaxWaitMs pairs (e.g. 1:0,8:10), not '{p}'.");
            return new BenchMode(b, w);
        }).ToList();
}
