using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using BeitV2.Ml.Retrieval;

namespace BeitV2.Bench;

/// <summary>
/// <c>vectors</c>: the HNSW index (<see cref="HnswVectorIndex"/>) on a synthetic collection of random vectors. For each
/// quantization: build time and vectors/s, file size, save and open times, process memory, recall@k of HNSW against an
/// exact scan on held-out queries, and single-threaded in-process search latency, at each search expansion asked for.
/// Uniformly random vectors are the hardest case for a graph index (a point's neighbours are barely closer than the
/// rest), so the recall here is a floor for real embeddings. HTTP latency is measured elsewhere.
/// </summary>
public static class VectorBench
{
    public const string Usage =
        "vectors [--count 1000000] [--dim 768] [--queries 1000] [--k 10] [--quantization f32,i8] [--expansion 128] [--data uniform|clustered] [--seed 1] [--dir PATH]";

    public static int Run(IReadOnlyList<string> args)
    {
        long count = 1_000_000;
        int dim = 768, queryCount = 1000, k = 10, seed = 1;
        var quantizations = new List<VectorQuantization> { VectorQuantization.Float32, VectorQuantization.Int8 };
        var expansions = new List<int> { HnswSettings.Default.ExpansionSearch };
        string? dir = null;
        var clustered = false;
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int(string s, int min) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min ? v : throw new ArgumentException($"{args[i - 1]} must be a whole number ≥ {min}");
            switch (args[i])
            {
                case "--count": count = Int(Next(), 1); break;
                case "--dim": dim = Int(Next(), 1); break;
                case "--queries": queryCount = Int(Next(), 1); break;
                case "--k": k = Int(Next(), 1); break;
                case "--seed": seed = Int(Next(), 0); break;
                case "--dir": dir = Next(); break;
                case "--data": clustered = Next() switch { "uniform" => false, "clustered" => true, _ => throw new ArgumentException("--data is uniform or clustered") }; break;
                case "--expansion": expansions = Next().Split(',').Select(s => Int(s, 1)).ToList(); break;
                case "--quantization":
                    quantizations = Next().Split(',').Select(q => q switch
                    {
                        "f32" => VectorQuantization.Float32,
                        "i8" => VectorQuantization.Int8,
                        _ => throw new ArgumentException("--quantization takes f32, i8 or both (f32,i8)"),
                    }).ToList();
                    break;
                default: throw new ArgumentException($"Unknown option {args[i]}.");
            }
        }
        if (count * dim > Array.MaxLength) throw new ArgumentException("--count × --dim is more floats than one array holds.");

        var settings = HnswSettings.Default;
        Console.WriteLine($"## Vector index: {count:N0} {(clustered ? "clustered" : "uniformly random")} {dim}-d vectors, {queryCount:N0} queries, recall@{k}");
        Console.WriteLine();
        Console.WriteLine($"- CPU: {CpuModel()}, {Environment.ProcessorCount} logical cores; load average {BenchMachine.LoadAverage()}");
        Console.WriteLine($"- USearch {HnswVectorIndex.LibraryVersion} (SIMD available: {HnswVectorIndex.HardwareAcceleration}); cosine metric; " +
                          $"connectivity (M) {settings.Connectivity}, expansion add {settings.ExpansionAdd}, expansion search {string.Join("/", expansions)}; " +
                          $"adds on {Math.Max(2, Environment.ProcessorCount)} threads, searches timed on 1");
        Console.WriteLine(clustered
            ? $"- Data: {Clusters} clusters around uniform centres in [-0.5, 0.5)^{dim}, each spread along {Spread} directions of its own (gaussian, 0.15) plus isotropic noise (0.02), seed {seed}; queries drawn from the same clusters, not in the index"
            : $"- Data: uniform in [-0.5, 0.5)^{dim}, seed {seed}; queries drawn from the same distribution, not in the index");

        var sw = Stopwatch.StartNew();
        var data = clustered ? Clustered(count, dim, seed) : Random(count * dim, seed);
        var queries = clustered ? Clustered(queryCount, dim, seed + 1) : Random((long)queryCount * dim, seed + 1);
        Normalise(data, dim);   // cosine does not change; the exact scan below becomes a dot product
        Normalise(queries, dim);
        Console.WriteLine($"- Generated in {sw.Elapsed.TotalSeconds:F1} s ({data.LongLength * 4 / 1e9:F2} GB of float32 held by the bench itself)");
        sw.Restart();
        var truth = ExactTopK(data, queries, dim, k);
        Console.WriteLine($"- Exact top-{k} of every query (brute force, {Environment.ProcessorCount} threads): {sw.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine();
        Console.WriteLine("| quantization | build s | vectors/s | file MB | save s | view open s | index memory MB | VmRSS after build MB | VmHWM MB | ef | recall@" + k + " | p50 ms | p99 ms | view p50 ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");

        var folder = dir ?? Path.Combine(Path.GetTempPath(), "beitv2-vector-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            foreach (var quantization in quantizations)
                RunOne(quantization, data, queries, truth, count, dim, k, expansions, settings, folder);
        }
        finally
        {
            if (dir is null) Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    private static void RunOne(VectorQuantization quantization, float[] data, float[] queries, long[][] truth, long count, int dim, int k,
        List<int> expansions, HnswSettings settings, string folder)
    {
        var name = quantization == VectorQuantization.Int8 ? "int8" : "float32";
        var path = Path.Combine(folder, name + ".hnsw");
        var sw = Stopwatch.StartNew();
        using var index = HnswVectorIndex.Create(dim, quantization, settings, count);
        const int batch = 10_000;
        var keys = new long[batch];
        for (long start = 0; start < count; start += batch)
        {
            var n = (int)Math.Min(batch, count - start);
            for (var i = 0; i < n; i++) keys[i] = start + i;
            index.Add(keys.AsSpan(0, n), data.AsSpan((int)(start * dim), n * dim));
            if ((start / batch) % 20 == 19) Console.Error.WriteLine($"  {name}: {start + n:N0} vectors in {sw.Elapsed.TotalSeconds:F0} s");
        }
        var build = sw.Elapsed.TotalSeconds;
        var pid = Environment.ProcessId;
        var rss = ProcStatusLine.Read(pid, "VmRSS:");
        var memory = index.MemoryBytes;
        sw.Restart();
        index.Save(path);
        var save = sw.Elapsed.TotalSeconds;
        var fileBytes = new FileInfo(path).Length;
        sw.Restart();
        using var view = HnswVectorIndex.View(path);
        var viewOpen = sw.Elapsed.TotalSeconds;
        var hwm = ProcStatusLine.Read(pid, "VmHWM:");

        foreach (var ef in expansions)
        {
            index.ExpansionSearch = ef;
            view.ExpansionSearch = ef;
            var (recall, latencies) = Measure(index, queries, truth, dim, k);
            var (_, viewLatencies) = Measure(view, queries, truth, dim, k);
            var stats = LatencyStats.Of(latencies);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {build:F1} | {count / build:F0} | {fileBytes / 1e6:F0} | {save:F1} | {viewOpen:F1} | {memory / 1e6:F0} | {rss / 1e6:F0} | {hwm / 1e6:F0} | {ef} | {recall:F4} | {stats.P50:F3} | {stats.P99:F3} | {LatencyStats.Of(viewLatencies).P50:F3} |"));
        }
        File.Delete(path);
    }

    private static (double Recall, List<double> Millis) Measure(IVectorIndex index, float[] queries, long[][] truth, int dim, int k)
    {
        var found = 0;
        var millis = new List<double>(truth.Length);
        for (var q = 0; q < truth.Length; q++)
        {
            var query = queries.AsSpan(q * dim, dim);
            var start = Stopwatch.GetTimestamp();
            var hits = index.Search(query, k);
            millis.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            var expected = truth[q];
            foreach (var hit in hits)
                if (Array.IndexOf(expected, hit.Key) >= 0) found++;
        }
        return (found / (double)(truth.Length * k), millis);
    }

    /// <summary>
    /// Brute-force top-k by dot product (the vectors are unit length), blocked so that a group of queries stays in
    /// cache while the data streams past once per group; groups run in parallel.
    /// </summary>
    private static long[][] ExactTopK(float[] data, float[] queries, int dim, int k)
    {
        var queryCount = queries.Length / dim;
        var count = data.LongLength / dim;
        var truth = new long[queryCount][];
        const int group = 32;
        Parallel.For(0, (queryCount + group - 1) / group, g =>
        {
            var first = g * group;
            var n = Math.Min(group, queryCount - first);
            var heaps = Enumerable.Range(0, n).Select(_ => new PriorityQueue<long, float>(k + 1)).ToArray();
            for (long row = 0; row < count; row++)
            {
                var vector = data.AsSpan((int)(row * dim), dim);
                for (var q = 0; q < n; q++)
                {
                    var score = TensorPrimitives.Dot(vector, queries.AsSpan((first + q) * dim, dim));
                    var heap = heaps[q];
                    if (heap.Count < k) heap.Enqueue(row, score);
                    else if (heap.TryPeek(out _, out var worst) && score > worst) heap.EnqueueDequeue(row, score);
                }
            }
            for (var q = 0; q < n; q++)
            {
                var keys = new long[heaps[q].Count];
                for (var i = keys.Length - 1; i >= 0; i--) keys[i] = heaps[q].Dequeue();
                truth[first + q] = keys;
            }
        });
        return truth;
    }

    private static float[] Random(long length, int seed)
    {
        var values = new float[length];
        const int chunk = 1 << 20;
        Parallel.For(0, (int)((length + chunk - 1) / chunk), c =>
        {
            var random = new Random(seed * 7919 + c);   // one stream per chunk: the same data for any thread count
            var span = values.AsSpan((int)((long)c * chunk), (int)Math.Min(chunk, length - (long)c * chunk));
            for (var i = 0; i < span.Length; i++) span[i] = random.NextSingle() - 0.5f;
        });
        return values;
    }

    private const int Clusters = 100, Spread = 16;

    /// <summary>
    /// Embedding-like data: points near <see cref="Clusters"/> centres, each cluster spread along <see cref="Spread"/>
    /// directions of its own plus a little noise, so the data has a low intrinsic dimension as real embeddings do.
    /// The clusters' shapes come from a fixed seed, so queries (another seed) come from the indexed distribution.
    /// </summary>
    private static float[] Clustered(long count, int dim, int seed)
    {
        var shapes = new Random(4242);
        var centres = new float[Clusters * dim];
        var directions = new float[Clusters * Spread * dim];
        for (var i = 0; i < centres.Length; i++) centres[i] = shapes.NextSingle() - 0.5f;
        for (var i = 0; i < directions.Length; i++) directions[i] = Gaussian(shapes) / MathF.Sqrt(dim);
        var values = new float[count * dim];
        const int chunk = 4096;
        Parallel.For(0, (int)((count + chunk - 1) / chunk), c =>
        {
            var random = new Random(seed * 7919 + c);
            for (long i = (long)c * chunk; i < Math.Min(count, (long)(c + 1) * chunk); i++)
            {
                var cluster = random.Next(Clusters);
                var row = values.AsSpan((int)(i * dim), dim);
                centres.AsSpan(cluster * dim, dim).CopyTo(row);
                for (var d = 0; d < Spread; d++)
                    TensorPrimitives.MultiplyAdd(directions.AsSpan((cluster * Spread + d) * dim, dim), 0.15f * Gaussian(random), row, row);
                for (var j = 0; j < dim; j++) row[j] += 0.02f * Gaussian(random);
            }
        });
        return values;
    }

    private static float Gaussian(Random random) =>
        MathF.Sqrt(-2f * MathF.Log(1f - random.NextSingle())) * MathF.Cos(2f * MathF.PI * random.NextSingle());

    private static void Normalise(float[] values, int dim)
    {
        Parallel.For(0, (int)(values.LongLength / dim), row =>
        {
            var v = values.AsSpan(row * dim, dim);
            TensorPrimitives.Divide(v, TensorPrimitives.Norm(v), v);
        });
    }

    private static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?[(line.IndexOf(':') + 1)..].Trim() ?? "?";
        }
        catch (IOException) { return "?"; }
    }
}
