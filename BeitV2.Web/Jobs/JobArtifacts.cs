using System.Text;
using System.Text.Json;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Jobs;

/// <summary>The latest per-code counts of a tokenizer job (<c>GET /api/v1/jobs/{id}/codebook</c>).</summary>
/// <param name="Step">the step the counts were taken at (0 and empty counts: none reported yet).</param>
/// <param name="Epoch">the epoch (counted from 1) the counts belong to (they restart at every epoch).</param>
/// <param name="CodebookSize">number of codes (the length of <paramref name="Counts"/>).</param>
/// <param name="Counts">assignments of each code so far in that epoch (index = code id).</param>
/// <param name="UsedCodes">codes with a non-zero count.</param>
public sealed record CodebookUsage(string JobId, long Step, int Epoch, int CodebookSize, IReadOnlyList<long> Counts, int UsedCodes, DateTimeOffset? UpdatedAt);

/// <summary>The job's log lines (<c>GET /api/v1/jobs/{id}/log</c>): the newest <c>tail</c> of <c>Total</c>.</summary>
public sealed record JobLog(string JobId, int Total, IReadOnlyList<string> Lines);

/// <summary>
/// Files beside <c>job.json</c> that the browser UI reads to catch up after a reload:
/// <c>log.txt</c> (every log line the job broadcast) and <c>codebook.json</c> (the latest code histogram of a tokenizer job).
/// </summary>
public static class JobArtifacts
{
    private const string LogFile = "log.txt";
    private const string CodebookFile = "codebook.json";
    private static readonly Lock Gate = new();

    public static void AppendLog(string jobDirectory, string line)
    {
        try
        {
            lock (Gate) File.AppendAllText(Path.Combine(jobDirectory, LogFile), line.ReplaceLineEndings(" ") + "\n", Encoding.UTF8);
        }
        catch (IOException) { } // the log is a convenience; the job must not fail because of it
    }

    public static JobLog ReadLog(string jobId, string jobDirectory, int tail)
    {
        var file = Path.Combine(jobDirectory, LogFile);
        string[] lines;
        lock (Gate) lines = File.Exists(file) ? File.ReadAllLines(file, Encoding.UTF8) : [];
        return new JobLog(jobId, lines.Length, lines.Skip(Math.Max(0, lines.Length - tail)).ToList());
    }

    public static void WriteCodebook(string jobId, string jobDirectory, long step, int epoch, IReadOnlyList<double> counts)
    {
        var ints = counts.Select(c => (long)Math.Round(c)).ToArray();
        var usage = new CodebookUsage(jobId, step, epoch, ints.Length, ints, ints.Count(c => c > 0), DateTimeOffset.UtcNow);
        try
        {
            lock (Gate) AtomicFile.WriteAllText(Path.Combine(jobDirectory, CodebookFile), JsonSerializer.Serialize(usage, JobStore.Json));
        }
        catch (IOException) { }
    }

    /// <summary>The latest counts, or an empty answer (step 0) before the first report.</summary>
    public static CodebookUsage ReadCodebook(string jobId, string jobDirectory, int codebookSize)
    {
        var file = Path.Combine(jobDirectory, CodebookFile);
        lock (Gate)
        {
            if (File.Exists(file))
            {
                try
                {
                    if (JsonSerializer.Deserialize<CodebookUsage>(File.ReadAllText(file), JobStore.Json) is { } usage) return usage;
                }
                catch (JsonException) { }
            }
        }
        return new CodebookUsage(jobId, 0, 0, codebookSize, [], 0, null);
    }

    /// <summary>The codebook size a tokenizer job's config asks for (the default when unset).</summary>
    public static int ConfiguredCodebookSize(JobRecord job) =>
        job.Config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty("codebookSize", out var v) && v.TryGetInt32(out var n)
            ? n
            : new JobSettings().CodebookSize;
}
