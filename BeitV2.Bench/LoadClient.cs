using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;

namespace BeitV2.Bench;

/// <summary>Result of the concurrent phase: completed requests over the wall time, and their latencies.</summary>
public sealed record ThroughputResult(int Completed, int Failed, double WallSeconds, LatencyStats Latency, bool HitTimeLimit)
{
    public double RequestsPerSecond => Completed / WallSeconds;
}

/// <summary>
/// HTTP side of the bench: single-image <c>POST /api/v1/classify</c> requests (raw image body), sent
/// one after another or by several clients at once, plus <c>/metrics</c> and <c>/api/v1/info</c>.
/// </summary>
public sealed class LoadClient(Uri baseAddress, byte[] image, string contentType) : IDisposable
{
    private readonly HttpClient http = new(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan, MaxConnectionsPerServer = 256 })
    {
        BaseAddress = baseAddress,
        Timeout = TimeSpan.FromMinutes(5),
    };

    /// <summary>One classification of the image; returns the client-side latency in ms. Throws on a non-2xx answer.</summary>
    public async Task<double> ClassifyAsync(CancellationToken ct)
    {
        using var content = new ByteArrayContent(image);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        var start = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync("api/v1/classify?topK=5", content, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"POST /api/v1/classify answered {(int)response.StatusCode}: {Truncate(body)}");
        return ms;
    }

    /// <summary><paramref name="count"/> requests one after another, bounded by <paramref name="limit"/>.</summary>
    public async Task<List<double>> SequentialAsync(int count, TimeSpan limit, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var result = new List<double>(count);
        for (var i = 0; i < count && sw.Elapsed < limit; i++) result.Add(await ClassifyAsync(ct));
        return result;
    }

    /// <summary>
    /// <paramref name="clients"/> loops sharing a budget of <paramref name="total"/> requests; each
    /// sends its next request as soon as the previous answered. Stops at the budget or the time limit.
    /// </summary>
    public async Task<ThroughputResult> ConcurrentAsync(int clients, int total, TimeSpan limit, CancellationToken ct)
    {
        var latencies = new ConcurrentBag<double>();
        var issued = 0;
        var failed = 0;
        var hitLimit = false;
        var sw = Stopwatch.StartNew();
        async Task Client()
        {
            while (!ct.IsCancellationRequested)
            {
                if (sw.Elapsed >= limit) { hitLimit = true; return; }
                if (Interlocked.Increment(ref issued) > total) return;
                try { latencies.Add(await ClassifyAsync(ct)); }
                catch (HttpRequestException e)
                {
                    if (Interlocked.Increment(ref failed) == 1) Console.Error.WriteLine($"  request failed: {e.Message}");
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(Client, ct)));
        var wall = sw.Elapsed.TotalSeconds;
        return new ThroughputResult(latencies.Count, failed, wall, LatencyStats.Of(latencies), hitLimit);
    }

    public async Task<MetricsSnapshot> MetricsAsync(CancellationToken ct) =>
        MetricsSnapshot.Parse(await http.GetStringAsync("metrics", ct));

    public async Task<JsonElement> InfoAsync(CancellationToken ct) =>
        JsonDocument.Parse(await http.GetStringAsync("api/v1/info", ct)).RootElement.Clone();

    /// <summary>
    /// The Inference:Engine the server reports in <c>/api/v1/info</c> (its <c>inference</c> options), or null for a
    /// build without that setting, which serves with TorchSharp.
    /// </summary>
    public static string? EngineOf(JsonElement info)
    {
        foreach (var section in info.EnumerateObject().Where(p => p.NameEquals("inference") && p.Value.ValueKind == JsonValueKind.Object))
            foreach (var p in section.Value.EnumerateObject())
                if (string.Equals(p.Name, "engine", StringComparison.OrdinalIgnoreCase) && p.Value.ValueKind == JsonValueKind.String)
                    return p.Value.GetString();
        return null;
    }

    private static string Truncate(string s) => s.Length > 300 ? s[..300] + "…" : s;

    public void Dispose() => http.Dispose();
}
