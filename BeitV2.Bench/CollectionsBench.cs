using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Ml.Data;
using BeitV2.Ml.Retrieval;

namespace BeitV2.Bench;

/// <summary>
/// <c>collections</c>: a collection of Fashion-MNIST built end to end through the real server's <c>index</c> job (the
/// shipped classifier as embedding model), then search over HTTP: latency by indexed item and by uploaded image, the
/// approximate index's recall@k against the exact scan (<c>exact=true</c>), and retrieval quality (precision@k by class
/// label) beside raw-pixel neighbours. Prints markdown; never part of the tests.
/// </summary>
public static class CollectionsBench
{
    public const string Usage = """
        collections [--images 70000] [--queries 1000] [--k 10] [--threads 2] [--quantization float32|int8] [--tokenizer] [--fashion DIR]
          Index Fashion-MNIST (train then test split; --images caps it) with the shipped classifier through the server's
          index job, then time searches over HTTP and measure recall@k (HNSW vs exact) and precision@k by label against
          raw-pixel cosine neighbours. --tokenizer also stores token maps with the shipped tokenizer.
        """;

    public static async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken ct)
    {
        int images = 70_000, queries = 1000, k = 10, threads = 2;
        var tokenizer = false;
        var quantization = "float32";
        var fashion = FashionMnistDataset.DefaultDirectory;
        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            switch (args[i])
            {
                case "--images": images = PositiveInt(Next(), "--images"); break;
                case "--queries": queries = PositiveInt(Next(), "--queries"); break;
                case "--k": k = PositiveInt(Next(), "--k"); break;
                case "--threads": threads = PositiveInt(Next(), "--threads"); break;
                case "--tokenizer": tokenizer = true; break;
                case "--quantization": quantization = Next() is "float32" or "int8" ? args[i] : throw new ArgumentException("--quantization is float32 or int8."); break;
                case "--fashion": fashion = Next(); break;
                default: throw new ArgumentException($"Unknown option '{args[i]}'.");
            }
        }

        var data = Path.Combine(Path.GetTempPath(), "beitv2-bench-collections-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(data);
        try
        {
            Console.WriteLine($"# collections bench ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
            Console.WriteLine();
            Console.WriteLine($"Machine: {CpuName()} ({Environment.ProcessorCount} logical CPUs), load {BenchMachine.LoadAverage()}; server: Release BeitV2.Web, Ml:Threads={threads}, Inference:Engine default (onnx), " +
                              $"the shipped models; client: one HttpClient, sequential requests on loopback.");
            await using var server = await ServerProcess.StartAsync(data, new BenchMode(8, 0), threads, "cpu", TimeSpan.FromSeconds(180), ct);
            using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };

            var models = await http.GetFromJsonAsync<JsonElement>("api/v1/models", ct);
            string DefaultOf(string kind) => models.EnumerateArray()
                .First(m => m.GetProperty("kind").GetString() == kind && m.GetProperty("isDefault").GetBoolean()).GetProperty("id").GetString()!;
            var classifier = DefaultOf("classifier");
            var request = new Dictionary<string, object?>
            {
                ["name"] = "bench", ["dataset"] = "fashion-mnist", ["embeddingModel"] = classifier, ["pooling"] = "mean", ["maxImages"] = images, ["quantization"] = quantization,
            };
            if (tokenizer) request["tokenizer"] = DefaultOf("tokenizer");
            var clock = Stopwatch.StartNew();
            using var created = await http.PostAsJsonAsync("api/v1/collections", request, ct);
            var accepted = await ReadAsync(created, ct);
            var id = accepted.GetProperty("id").GetString()!;
            JsonElement collection;
            while (true)
            {
                await Task.Delay(2000, ct);
                collection = await http.GetFromJsonAsync<JsonElement>($"api/v1/collections/{id}", ct);
                var status = collection.GetProperty("status").GetString();
                if (status == "ready") break;
                if (status is "failed" or "cancelled")
                    throw new InvalidOperationException($"The index job ended {status}: {collection.GetProperty("error")}");
            }
            var wall = clock.Elapsed.TotalSeconds;
            var job = await http.GetFromJsonAsync<JsonElement>($"api/v1/jobs/{collection.GetProperty("job").GetString()}", ct);
            var result = job.GetProperty("result");
            var items = collection.GetProperty("items").GetInt64();
            var index = collection.GetProperty("index");
            Console.WriteLine();
            Console.WriteLine("## Index build (the index job, end to end)");
            Console.WriteLine();
            Console.WriteLine("| items | embedding model | tokenizer | job seconds | images/s (job) | wall seconds (request → ready) | index | index bytes | collection disk |");
            Console.WriteLine("|---:|---|---|---:|---:|---:|---|---:|---:|");
            Console.WriteLine($"| {items:N0} | {classifier} (mean pooling, {collection.GetProperty("dim").GetInt32()}-d) | {(tokenizer ? "shipped" : "none")} | " +
                              $"{result.GetProperty("seconds").GetDouble():0.0} | {result.GetProperty("imagesPerSecond").GetDouble():0.0} | {wall:0.0} | " +
                              $"{index.GetProperty("kind").GetString()} {index.GetProperty("quantization").GetString()} | {index.GetProperty("bytes").GetInt64():N0} | " +
                              $"{collection.GetProperty("diskBytes").GetInt64():N0} |");

            // Queries: evenly spread over the collection (the test split's items come last).
            var picks = Enumerable.Range(0, Math.Min(queries, (int)items)).Select(i => (long)(i * (items / Math.Min(queries, (int)items)))).ToArray();
            var byItem = new List<double>(picks.Length);
            var hits = new Dictionary<long, JsonElement[]>();
            foreach (var item in picks)
            {
                var sw = Stopwatch.StartNew();
                using var r = await http.PostAsync($"api/v1/collections/{id}/search?item={item}&k={k + 1}", null, ct);
                var answer = await ReadAsync(r, ct);
                byItem.Add(sw.Elapsed.TotalMilliseconds);
                hits[item] = answer.GetProperty("results").EnumerateArray().Select(e => e.Clone()).ToArray();
            }
            var sample = await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "wwwroot", "samples", "fashion-0-ankle-boot.png"), ct);
            var byImage = new List<double>(200);
            for (var i = 0; i < Math.Min(200, queries); i++)
            {
                using var form = new MultipartFormDataContent();
                form.Add(new ByteArrayContent(sample) { Headers = { ContentType = new("image/png") } }, "image", "ankle-boot.png");
                var sw = Stopwatch.StartNew();
                using var r = await http.PostAsync($"api/v1/collections/{id}/search?k={k}", form, ct);
                await ReadAsync(r, ct);
                byImage.Add(sw.Elapsed.TotalMilliseconds);
            }
            // Recall of the approximate index against the exact scan of the same vectors.
            double recallSum = 0;
            foreach (var item in picks)
            {
                using var r = await http.PostAsync($"api/v1/collections/{id}/search?item={item}&k={k}&exact=true", null, ct);
                var exact = (await ReadAsync(r, ct)).GetProperty("results").EnumerateArray().Select(e => e.GetProperty("item").GetInt64()).ToHashSet();
                recallSum += hits[item].Take(k).Count(h => exact.Contains(h.GetProperty("item").GetInt64())) / (double)exact.Count;
            }
            Console.WriteLine();
            Console.WriteLine($"## Search over HTTP ({items:N0} items, k = {k})");
            Console.WriteLine();
            Console.WriteLine("| query | requests | p50 ms | p99 ms | mean ms |");
            Console.WriteLine("|---|---:|---:|---:|---:|");
            foreach (var (name, lat) in new[] { ("`?item=` (an indexed item)", byItem), ("an uploaded 28 px PNG (decode + embed + search)", byImage) })
            {
                var s = LatencyStats.Of(lat);
                Console.WriteLine($"| {name} | {s.Count} | {s.P50:0.00} | {s.P99:0.00} | {s.Mean:0.00} |");
            }
            Console.WriteLine();
            Console.WriteLine($"Recall@{k} of the collection's index against `exact=true` on the same {picks.Length} queries: **{recallSum / picks.Length:0.0000}**.");

            // Retrieval quality: precision@k by label (the query itself excluded), beside raw-pixel cosine neighbours.
            var train = new FashionMnistDataset(fashion, FashionMnistSplit.Train);
            var test = new FashionMnistDataset(fashion, FashionMnistSplit.Test);
            int Label(long item) => item < train.Count ? train.GetLabel((int)item) : test.GetLabel((int)(item - train.Count));
            double modelPrecision = picks.Average(item =>
                hits[item].Where(h => h.GetProperty("item").GetInt64() != item).Take(k).Count(h => Label(h.GetProperty("item").GetInt64()) == Label(item)) / (double)k);
            using var pixels = new ExactVectorIndex(28 * 28);
            var vector = new float[28 * 28];
            for (long item = 0; item < items; item++)
            {
                var grey = item < train.Count ? train.GetPixels((int)item) : test.GetPixels((int)(item - train.Count));
                for (var p = 0; p < vector.Length; p++) vector[p] = grey[p];
                pixels.Add([item], vector);
            }
            double pixelPrecision = picks.Average(item =>
            {
                var grey = item < train.Count ? train.GetPixels((int)item) : test.GetPixels((int)(item - train.Count));
                for (var p = 0; p < vector.Length; p++) vector[p] = grey[p];
                return pixels.Search(vector, k + 1).Where(h => h.Key != item).Take(k).Count(h => Label(h.Key) == Label(item)) / (double)k;
            });
            Console.WriteLine();
            Console.WriteLine($"## Retrieval quality (precision@{k} by class label, {picks.Length} queries, the query excluded)");
            Console.WriteLine();
            Console.WriteLine("| neighbours by | precision@" + k + " |");
            Console.WriteLine("|---|---:|");
            Console.WriteLine($"| the shipped classifier's embedding (the collection's index) | {modelPrecision:0.000} |");
            Console.WriteLine($"| raw pixels (cosine, exact) | {pixelPrecision:0.000} |");
            return 0;
        }
        finally
        {
            try { Directory.Delete(data, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri?.PathAndQuery}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static string CpuName()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }

    private static int PositiveInt(string text, string option) =>
        int.TryParse(text, out var v) && v > 0 ? v : throw new ArgumentException($"{option} must be a positive integer, not '{text}'.");
}
