using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using Onnx;

namespace BeitV2.Ml.Onnx;

/// <summary>What identifies a cached graph: the package's kind, config and weights, the precision, and <see cref="OnnxGraphCache.ExporterVersion"/>.</summary>
/// <param name="WeightsSha256">SHA-256 of the package's weights file (hex).</param>
/// <param name="Config">the manifest's config as JSON text (a config edited without new weights still gets a new graph).</param>
public sealed record OnnxGraphKey(string Kind, string Config, string WeightsSha256, OnnxPrecision Precision)
{
    /// <summary>The cache entry's folder name: precision and a hash of every part of the key.</summary>
    public string Folder
    {
        get
        {
            var text = $"{OnnxGraphCache.ExporterVersion}\n{Kind}\n{Precision}\n{WeightsSha256.ToLowerInvariant()}\n{Config}";
            return $"{PrecisionName}-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..24]}";
        }
    }

    public string PrecisionName => Precision.ToString().ToLowerInvariant();
}

/// <summary>A graph ready to load: where it is and how it got there.</summary>
/// <param name="ModelPath">the <c>.onnx</c> file (its weights in <see cref="OnnxGraphCache.DataFile"/> beside it).</param>
/// <param name="Built">true when this call exported it; false for a verified cache hit.</param>
/// <param name="Rebuilt">why an existing entry was not used (corrupt, truncated, unreadable), or null.</param>
/// <param name="ExportTime">the export and write time when built.</param>
/// <param name="Bytes">the entry's files together.</param>
public sealed record OnnxCachedGraph(string ModelPath, bool Built, string? Rebuilt, TimeSpan ExportTime, long Bytes);

/// <summary>
/// The exported graphs of a model package, cached in the package's own folder (<c>onnx/{precision}-{key}/</c>): the graph
/// is built once per package, precision and exporter version, and later loads skip the export (and the TorchSharp
/// model) entirely. An entry is written in a staging folder and renamed into place, with a sidecar
/// (<see cref="SidecarFile"/>) naming every file's size and SHA-256; an entry that fails that check is rebuilt, never
/// served. Entries of other weights are removed when a new one is written, so a package whose weights were replaced
/// keeps one graph per precision.
/// </summary>
public static class OnnxGraphCache
{
    /// <summary>Bump when any exporter writes a different graph for the same weights: older entries then no longer match.</summary>
    /// <remarks>2: the segmenter's graph gained the pooled <c>mean</c> output (the out-of-domain score reads it).</remarks>
    public const int ExporterVersion = 2;
    public const string FolderName = "onnx";
    public const string ModelFile = "model.onnx";
    public const string DataFile = "model.onnx.data";
    public const string SidecarFile = "graph.json";

    private const string StagingPrefix = ".tmp-";
    private const string StalePrefix = ".stale-";
    /// <summary>Staging folders older than this are leftovers of a crashed export (a live one takes seconds to minutes).</summary>
    private static readonly TimeSpan LeftoverAge = TimeSpan.FromHours(1);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The entry for <paramref name="key"/> in <paramref name="packageDirectory"/>: verified and returned, or exported by <paramref name="export"/> and written.</summary>
    /// <exception cref="IOException">the package folder cannot be written (the caller may serve without a cache).</exception>
    /// <exception cref="UnauthorizedAccessException">likewise.</exception>
    public static OnnxCachedGraph GetOrBuild(string packageDirectory, OnnxGraphKey key, Func<ModelProto> export)
    {
        var root = Path.Combine(packageDirectory, FolderName);
        var entry = Path.Combine(root, key.Folder);
        string? rebuilt = null;
        if (Directory.Exists(entry))
        {
            var problem = Verify(entry, key, out var bytes);
            if (problem is null)
            {
                RemoveLeftovers(root);
                return new OnnxCachedGraph(Path.Combine(entry, ModelFile), false, null, TimeSpan.Zero, bytes);
            }
            rebuilt = problem;
        }

        Directory.CreateDirectory(root);
        var staging = Path.Combine(root, $"{StagingPrefix}{key.Folder}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            var clock = Stopwatch.StartNew();
            var files = OnnxExternalData.Write(export(), staging, ModelFile, DataFile);
            var sidecar = new Sidecar(ExporterVersion, key.Kind, key.PrecisionName, key.WeightsSha256.ToLowerInvariant(), key.Folder, files,
                Math.Round(clock.Elapsed.TotalSeconds, 3), DateTimeOffset.UtcNow);
            DurableFiles.WriteAllBytes(Path.Combine(staging, SidecarFile), JsonSerializer.SerializeToUtf8Bytes(sidecar, Json));
            var exportTime = clock.Elapsed;
            if (Directory.Exists(entry))
            {
                // Another server sharing the folder got here first: keep its entry if it is sound, else replace it.
                if (Verify(entry, key, out var theirs) is null)
                {
                    Directory.Delete(staging, recursive: true);
                    return new OnnxCachedGraph(Path.Combine(entry, ModelFile), false, rebuilt, TimeSpan.Zero, theirs);
                }
                RemoveAside(root, entry);
            }
            Directory.Move(staging, entry);
            RemoveOthers(root, key);
            return new OnnxCachedGraph(Path.Combine(entry, ModelFile), true, rebuilt, exportTime, files.Sum(f => f.Bytes));
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    /// <summary>Null when the entry is complete and every file has its recorded size and SHA-256; else what is wrong.</summary>
    public static string? Verify(string entry, OnnxGraphKey key, out long bytes)
    {
        bytes = 0;
        Sidecar? sidecar;
        try
        {
            sidecar = JsonSerializer.Deserialize<Sidecar>(File.ReadAllBytes(Path.Combine(entry, SidecarFile)), Json);
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return $"its {SidecarFile} is missing or unreadable ({e.GetType().Name})";
        }
        if (sidecar is null || sidecar.Files is not { Count: > 0 }) return $"its {SidecarFile} lists no files";
        if (sidecar.ExporterVersion != ExporterVersion || sidecar.Key != key.Folder
            || !string.Equals(sidecar.WeightsSha256, key.WeightsSha256, StringComparison.OrdinalIgnoreCase))
            return $"its {SidecarFile} describes another graph";
        if (!sidecar.Files.Any(f => f.Name == ModelFile)) return $"its {SidecarFile} does not list {ModelFile}";
        foreach (var f in sidecar.Files)
        {
            if (f.Name.Contains('/') || f.Name.Contains('\\') || f.Name.StartsWith('.')) return $"its {SidecarFile} names an odd file '{f.Name}'";
            var path = Path.Combine(entry, f.Name);
            var info = new FileInfo(path);
            if (!info.Exists) return $"{f.Name} is missing";
            if (info.Length != f.Bytes) return $"{f.Name} has {info.Length} bytes, not {f.Bytes} (truncated or replaced)";
            if (!string.Equals(DurableFiles.Sha256(path), f.Sha256, StringComparison.OrdinalIgnoreCase)) return $"{f.Name} does not match its SHA-256 (corrupt)";
            bytes += f.Bytes;
        }
        return null;
    }

    // Renames first (a reader that already opened the old files keeps them), then deletes.
    private static void RemoveAside(string root, string entry)
    {
        var aside = Path.Combine(root, $"{StalePrefix}{Guid.NewGuid():N}");
        Directory.Move(entry, aside);
        TryDelete(aside);
    }

    private static bool IsLeftover(DirectoryInfo dir) =>
        dir.Name.StartsWith(StagingPrefix, StringComparison.Ordinal) || dir.Name.StartsWith(StalePrefix, StringComparison.Ordinal);

    /// <summary>Removes staging and set-aside folders older than <see cref="LeftoverAge"/> (what a crash mid-write leaves).</summary>
    private static void RemoveLeftovers(string root)
    {
        try
        {
            foreach (var dir in new DirectoryInfo(root).EnumerateDirectories().Where(IsLeftover))
                if (DateTime.UtcNow - dir.LastWriteTimeUtc > LeftoverAge) TryDelete(dir.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Removes entries of other weights (the package's weights were replaced) and leftovers of crashed writes.</summary>
    private static void RemoveOthers(string root, OnnxGraphKey key)
    {
        RemoveLeftovers(root);
        foreach (var dir in new DirectoryInfo(root).EnumerateDirectories())
        {
            if (dir.Name == key.Folder || IsLeftover(dir)) continue;
            if (ReadWeights(dir.FullName) is { } sha && string.Equals(sha, key.WeightsSha256, StringComparison.OrdinalIgnoreCase)) continue; // same weights, other precision
            try { RemoveAside(root, dir.FullName); }
            catch (IOException) { }
        }
    }

    private static string? ReadWeights(string entry)
    {
        try
        {
            return JsonSerializer.Deserialize<Sidecar>(File.ReadAllBytes(Path.Combine(entry, SidecarFile)), Json)?.WeightsSha256;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The sidecar of an entry.</summary>
    private sealed record Sidecar(int ExporterVersion, string Kind, string Precision, string WeightsSha256, string Key,
        IReadOnlyList<OnnxGraphFile> Files, double ExportSeconds, DateTimeOffset CreatedUtc);
}
