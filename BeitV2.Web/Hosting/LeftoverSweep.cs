using System.Text.RegularExpressions;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Hosting;

/// <summary>
/// At start-up, before training resumes, removes what interrupted writes leave in the data directory:
/// the upload staging folder <c>tmp/</c>, hidden <c>.deleted-*</c> folders (deletions renamed away but
/// not yet removed), <c>.*.old-*</c> (replaced folders), <c>.*.extract-*</c> (dataset imports),
/// <c>.*.tmp-*</c> and <c>*.tmp-*</c> (staged model packages, checkpoints and atomically written files),
/// <c>.seed-*</c>, and datasets whose description or folder is missing.
/// </summary>
/// <remarks>
/// With the embedded job storage one server owns the data directory, so everything temporary found at
/// start-up is a leftover. With shared storage (PostgreSQL, several servers on one data directory)
/// another server may be writing right now: staging entries younger than <c>Storage:SweepMinAgeMinutes</c>
/// are kept. Renamed-away entries (<c>.deleted-*</c>, <c>.old-*</c>) are garbage however young.
/// </remarks>
public sealed partial class LeftoverSweep(DataDirectory data, IOptions<StorageOptions> storage, IOptions<JobsOptions> jobs,
    ILogger<LeftoverSweep> logger) : IHostedService
{
    private const int MaxDepth = 5; // jobs/{id}/checkpoints/{stage}/.checkpoint-N.tmp-*

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var shared = !jobs.Value.Storage.Trim().Equals("sqlite", StringComparison.OrdinalIgnoreCase);
        var minAge = shared ? TimeSpan.FromMinutes(Math.Max(0, storage.Value.SweepMinAgeMinutes)) : TimeSpan.Zero;
        var removed = Sweep(data.Root, minAge, DateTime.UtcNow, logger);
        if (removed.Count > 0)
            logger.LogInformation("Removed {Count} leftover(s) of interrupted writes, {Bytes} bytes: {Names}", removed.Count,
                removed.Sum(r => r.Bytes), string.Join(", ", removed.Take(20).Select(r => r.Path)));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>One removed entry: its path relative to the data directory and the bytes it held.</summary>
    public readonly record struct Removed(string Path, long Bytes);

    /// <summary>Removes the leftovers under <paramref name="root"/> (staging entries only when at least <paramref name="minAge"/> old).</summary>
    public static IReadOnlyList<Removed> Sweep(string root, TimeSpan minAge, DateTime nowUtc, ILogger logger)
    {
        var removed = new List<Removed>();
        var tmp = Path.Combine(root, "tmp");
        if (Directory.Exists(tmp))
            foreach (var entry in Entries(tmp))
                if (IsOld(entry, minAge, nowUtc)) Remove(root, entry, removed, logger);
        Visit(root, root, 0, minAge, nowUtc, removed, logger);
        SweepDatasets(root, minAge, nowUtc, removed, logger);
        return removed;
    }

    private static void Visit(string root, string dir, int depth, TimeSpan minAge, DateTime now, List<Removed> removed, ILogger logger)
    {
        foreach (var entry in Entries(dir))
        {
            var name = entry.Name;
            if (depth == 0 && name == "tmp") continue;
            if (TrashName().IsMatch(name)) Remove(root, entry, removed, logger);
            else if (StagingName().IsMatch(name))
            {
                if (IsOld(entry, minAge, now)) Remove(root, entry, removed, logger);
            }
            else if (entry is DirectoryInfo sub && sub.LinkTarget is null && depth < MaxDepth
                     && !(depth == 1 && Path.GetFileName(dir) is "datasets" or "models")) // their content is data, never staging
                Visit(root, sub.FullName, depth + 1, minAge, now, removed, logger);
        }
    }

    // A dataset is a folder {id} with its description {id}.json beside it: a description without a folder is
    // what a crashed delete leaves, a folder without a description what a crashed upload leaves.
    private static void SweepDatasets(string root, TimeSpan minAge, DateTime now, List<Removed> removed, ILogger logger)
    {
        var datasets = Path.Combine(root, "datasets");
        if (!Directory.Exists(datasets)) return;
        foreach (var entry in Entries(datasets))
        {
            if (entry.Name.StartsWith('.')) continue;
            if (entry is FileInfo { Extension: ".json" } json && !Directory.Exists(Path.ChangeExtension(json.FullName, null)))
                Remove(root, entry, removed, logger);
            else if (entry is DirectoryInfo dir && !File.Exists(dir.FullName + ".json") && IsOld(entry, minAge, now))
                Remove(root, entry, removed, logger);
        }
    }

    // Renamed away to be deleted: .deleted-{name}-{guid} (models, jobs, datasets), .{name}.old-{guid} (replaced folders).
    [GeneratedRegex(@"^\.(deleted-.+|.+\.old-[0-9a-f]{32})$")]
    private static partial Regex TrashName();

    // Being written: .{name}.tmp-{guid} / .{name}.extract-{guid} (staging folders), .seed-{id}-{guid}, {file}.tmp-{guid} (AtomicFile).
    [GeneratedRegex(@"^(\..+\.(tmp|extract)-[0-9a-f]{32}|\.seed-.+-[0-9a-f]{32}|.+\.tmp-[0-9a-f]{32})$")]
    private static partial Regex StagingName();

    private static IEnumerable<FileSystemInfo> Entries(string dir)
    {
        try
        {
            return new DirectoryInfo(dir).GetFileSystemInfos("*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true });
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    private static bool IsOld(FileSystemInfo entry, TimeSpan minAge, DateTime now) =>
        minAge <= TimeSpan.Zero || now - entry.LastWriteTimeUtc >= minAge;

    private static void Remove(string root, FileSystemInfo entry, List<Removed> removed, ILogger logger)
    {
        var relative = Path.GetRelativePath(root, entry.FullName);
        try
        {
            long bytes;
            if (entry is DirectoryInfo dir && dir.LinkTarget is null)
            {
                bytes = DiskUsage.Of(dir.FullName);
                dir.Delete(recursive: true);
            }
            else
            {
                bytes = entry is FileInfo f && f.LinkTarget is null ? f.Length : 0;
                entry.Delete();
            }
            removed.Add(new Removed(relative, bytes));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not remove the leftover {Path}: {Message}", relative, e.Message);
        }
    }
}
