// BeitV2.Bench: speed figures of the inference service, printed as markdown. Never part of the tests.
//
//   dotnet run -c Release --project BeitV2.Bench -- serve [--model base|tiny] [--clients 8] [--requests N] [--warmup K] ...
//   dotnet run -c Release --project BeitV2.Bench -- train [--stage all|tokenizer|...] [--model tiny|base|both] [--batch N] [--steps N] [--warmup K] ...
//   dotnet run -c Release --project BeitV2.Bench -- hub --servers URL,URL [--jobs 4] [--clients 50]
//   dotnet run -c Release --project BeitV2.Bench -- attention [--model base|tiny] [--rounds 3]
//   dotnet run -c Release --project BeitV2.Bench -- flood [--requests 4] [--images 32] [--rss-cap-gib 8]
//   dotnet run -c Release --project BeitV2.Bench -- collections [--images 70000] [--queries 1000] [--k 10]
//   dotnet run -c Release --project BeitV2.Bench -- vectors [--count 1000000] [--dim 768] [--queries 1000] [--k 10] [--quantization f32,i8]
//   dotnet run -c Release --project BeitV2.Bench -- perf [--sizes base,tiny] [--cases classifier,tokenizer,segmenter] [--parts matmul,engines,http,memory] ...
//
// Registers a random-initialised classifier in a temporary data directory, times the torch forward
// alone, then starts the real BeitV2.Web once per Inference configuration (unbatched, batched) on a
// loopback port and measures single-image latency and the throughput of concurrent clients.
// train: images/s of the five real trainers on synthetic batches, random weights, tiny and Base presets.
using BeitV2.Bench;

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine(BenchArgs.Usage);
    Console.WriteLine(TrainArgs.Usage);
    Console.WriteLine(HubBench.Usage);
    Console.WriteLine(AttentionBench.Usage);
    Console.WriteLine(PerfArgs.Usage);
    Console.WriteLine(FloodBench.Usage);
    Console.WriteLine(CollectionsBench.Usage);
    Console.WriteLine(VectorBench.Usage);
    return args.Length == 0 ? 2 : 0;
}
if (args[0] == "attention")
{
    try
    {
        return AttentionBench.Run(args.Skip(1).ToList());
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{AttentionBench.Usage}");
        return 2;
    }
}
if (args[0] == "train") return RunTrain(args);
if (args[0] == "vectors")
{
    try
    {
        return VectorBench.Run(args.Skip(1).ToList());
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{VectorBench.Usage}");
        return 2;
    }
}
if (args[0] == "flood")
{
    try
    {
        return await FloodBench.RunAsync(args.Skip(1).ToList(), CancellationToken.None);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{FloodBench.Usage}");
        return 2;
    }
}
if (args[0] == "perf") return await RunPerf(args);
if (args[0] == "collections")
{
    try
    {
        return await CollectionsBench.RunAsync(args.Skip(1).ToList(), CancellationToken.None);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{CollectionsBench.Usage}");
        return 2;
    }
}
if (args[0] == "int8") return Int8AgreementBench.Run(args.Skip(1).ToList());
if (args[0] == "perf-memory") return PerfBench.MemoryChild();   // internal: the fresh process of perf's memory case
if (args[0] == "hub")
{
    try
    {
        return await HubBench.RunAsync(args.Skip(1).ToList());
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{HubBench.Usage}");
        return 2;
    }
}
if (args[0] != "serve")
{
    Console.Error.WriteLine($"Unknown command '{args[0]}'.\n\n{BenchArgs.Usage}\n{TrainArgs.Usage}");
    return 2;
}

BenchArgs options;
try
{
    options = BenchArgs.Parse(args.Skip(1).ToList());
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"{e.Message}\n\n{BenchArgs.Usage}");
    return 2;
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
try
{
    var report = await ServeBench.RunAsync(options, string.Join(' ', args), cts.Token);
    Console.WriteLine(report);
    return 0;
}
catch (OperationCanceledException) when (cts.IsCancellationRequested)
{
    Console.Error.WriteLine("Cancelled.");
    return 130;
}

static int RunTrain(string[] args)
{
    TrainArgs options;
    try
    {
        options = TrainArgs.Parse(args.Skip(1).ToList());
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{TrainArgs.Usage}");
        return 2;
    }
    using var cts = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
    try
    {
        Console.WriteLine(TrainBench.Run(options, string.Join(' ', args), cts.Token));
        return 0;
    }
    catch (OperationCanceledException) when (cts.IsCancellationRequested)
    {
        Console.Error.WriteLine("Cancelled.");
        return 130;
    }
}

static async Task<int> RunPerf(string[] args)
{
    PerfArgs options;
    try
    {
        options = PerfArgs.Parse(args.Skip(1).ToList());
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine($"{e.Message}\n\n{PerfArgs.Usage}");
        return 2;
    }
    using var cts = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
    try
    {
        Console.WriteLine(await PerfBench.RunAsync(options, string.Join(' ', args), cts.Token));
        return 0;
    }
    catch (OperationCanceledException) when (cts.IsCancellationRequested)
    {
        Console.Error.WriteLine("Cancelled.");
        return 130;
    }
    catch (InvalidOperationException e)
    {
        Console.Error.WriteLine($"perf failed: {e.Message}");
        return 1;
    }
}
