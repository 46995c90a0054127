using System.Diagnostics;

namespace BeitV2.Bench;

/// <summary>
/// How busy the machine is with processes other than the bench and its server (Linux
/// <c>/proc</c>): the figures of a phase are only meaningful if nothing else used the cores.
/// Elsewhere every method answers "unknown" (NaN) and waiting returns at once.
/// </summary>
public static class CpuMonitor
{
    public sealed record Sample(long Total, long Busy, long Own, int Cpus);

    public static Sample? Take(IReadOnlyCollection<int> pids)
    {
        try
        {
            var lines = File.ReadAllLines("/proc/stat");
            var f = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(long.Parse).ToArray();
            // user nice system idle iowait irq softirq steal
            var total = f.Sum();
            var busy = total - f[3] - f[4];
            var cpus = lines.Count(l => l.StartsWith("cpu", StringComparison.Ordinal) && l.Length > 3 && char.IsDigit(l[3]));
            long own = 0;
            foreach (var pid in pids)
            {
                try
                {
                    var stat = File.ReadAllText($"/proc/{pid}/stat");
                    var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    own += long.Parse(rest[11]) + long.Parse(rest[12]);   // utime, stime (fields 14 and 15)
                }
                catch (IOException) { }   // exited
            }
            return new Sample(total, busy, own, Math.Max(1, cpus));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Average number of cores used by other processes between two samples.</summary>
    public static double ForeignCores(Sample? a, Sample? b)
    {
        if (a is null || b is null || b.Total <= a.Total) return double.NaN;
        var wall = (double)(b.Total - a.Total) / b.Cpus;
        return Math.Max(0, (b.Busy - a.Busy) - (b.Own - a.Own)) / wall;
    }

    /// <summary>Waits (up to <paramref name="maxWait"/>) for a 3-second window in which other processes use less than <paramref name="threshold"/> cores; returns whether it found one.</summary>
    public static async Task<bool> WaitQuietAsync(Func<IReadOnlyCollection<int>> pids, double threshold, TimeSpan maxWait, Action<string> progress, CancellationToken ct)
    {
        if (maxWait <= TimeSpan.Zero || Take(pids()) is null) return true;
        var sw = Stopwatch.StartNew();
        var said = false;
        while (true)
        {
            var a = Take(pids());
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            var foreign = ForeignCores(a, Take(pids()));
            if (foreign < threshold) return true;
            if (sw.Elapsed >= maxWait)
            {
                progress($"  still {foreign:0.00} cores busy elsewhere after {sw.Elapsed.TotalSeconds:0} s; measuring anyway");
                return false;
            }
            if (!said) { progress($"  waiting for other processes to go quiet ({foreign:0.00} cores busy elsewhere)"); said = true; }
        }
    }
}
