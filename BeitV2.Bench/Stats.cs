namespace BeitV2.Bench;

/// <summary>Summary of a set of latencies in milliseconds (nearest-rank percentiles).</summary>
public sealed record LatencyStats(int Count, double Mean, double P50, double P95, double P99, double Min, double Max)
{
    public static LatencyStats Of(IEnumerable<double> millis)
    {
        var s = millis.OrderBy(x => x).ToArray();
        if (s.Length == 0) return new LatencyStats(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
        double P(double q) => s[Math.Clamp((int)Math.Ceiling(q * s.Length) - 1, 0, s.Length - 1)];
        return new LatencyStats(s.Length, s.Average(), P(0.50), P(0.95), P(0.99), s[0], s[^1]);
    }
}

/// <summary>
/// The Prometheus text exposition of <c>GET /metrics</c> as series → value, so two scrapes can be
/// subtracted to get what happened in between (the counters and histograms are cumulative).
/// </summary>
public sealed class MetricsSnapshot
{
    private readonly Dictionary<string, double> values;

    private MetricsSnapshot(Dictionary<string, double> values) => this.values = values;

    public static MetricsSnapshot Parse(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var cut = line.LastIndexOf(' ');
            if (cut <= 0) continue;
            if (double.TryParse(line[(cut + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v))
                values[line[..cut]] = v;
        }
        return new MetricsSnapshot(values);
    }

    public double Get(string series) => values.GetValueOrDefault(series);

    /// <summary>Increase of a series since <paramref name="before"/>.</summary>
    public double Delta(MetricsSnapshot before, string series) => Get(series) - before.Get(series);

    /// <summary>Cumulative bucket counts of a histogram for one operation: (upper bound, count ≤ bound).</summary>
    public IReadOnlyList<(double Le, double Count)> Buckets(MetricsSnapshot before, string histogram, string operation)
    {
        var prefix = $"{histogram}_bucket{{operation=\"{operation}\",le=\"";
        return values.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k =>
            {
                var le = k[prefix.Length..^2];
                var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, System.Globalization.CultureInfo.InvariantCulture);
                return (bound, Delta(before, k));
            })
            .OrderBy(b => b.bound).ToList();
    }
}

/// <summary>What the server's own metrics say about a phase: batches, images, forward and queue time.</summary>
public sealed record ServerSide(double Batches, double Images, double ComputeSecondsSum, double QueueSecondsSum, string Histogram)
{
    public double MeanBatch => Batches > 0 ? Images / Batches : double.NaN;
    public double MeanForwardMs => Batches > 0 ? 1000 * ComputeSecondsSum / Batches : double.NaN;
    public double MeanQueueMs => Images > 0 ? 1000 * QueueSecondsSum / Images : double.NaN;

    public const string Operation = "classify";

    public static ServerSide Between(MetricsSnapshot before, MetricsSnapshot after)
    {
        string S(string name) => $"{name}{{operation=\"{Operation}\"}}";
        var buckets = after.Buckets(before, "beitv2_inference_batch_size", Operation);
        // Non-cumulative counts per bucket range, only the ranges that saw batches: "1:12 2:3 3-4:5".
        var parts = new List<string>();
        double prevLe = 0, prevCount = 0;
        foreach (var (le, cum) in buckets)
        {
            var n = cum - prevCount;
            if (n > 0)
            {
                var lo = (int)prevLe + 1;
                var label = double.IsPositiveInfinity(le) ? $">{(int)prevLe}" : lo == (int)le ? $"{(int)le}" : $"{lo}-{(int)le}";
                parts.Add($"{label}:{n:0}");
            }
            prevLe = le;
            prevCount = cum;
        }
        return new ServerSide(
            after.Delta(before, S("beitv2_inference_batch_size_count")),
            after.Delta(before, S("beitv2_inference_batch_size_sum")),
            after.Delta(before, S("beitv2_inference_compute_seconds_sum")),
            after.Delta(before, S("beitv2_inference_queue_seconds_sum")),
            string.Join(" ", parts));
    }
}
