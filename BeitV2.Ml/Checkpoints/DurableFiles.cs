using System.Security.Cryptography;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Crash-safe file helpers shared by model packages and training checkpoints: files are fsynced
/// before a folder is renamed into place, so a crash leaves either the old or the new folder.
/// </summary>
public static class DurableFiles
{
    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>Flushes an existing file's data to disk.</summary>
    public static void Fsync(string path)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> atomically: the bytes go to a hidden file beside it, flushed to disk, which is then
    /// renamed over it, so a reader sees the old file or the new one, never half of one.
    /// </summary>
    public static void ReplaceFile(string path, byte[] bytes)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            WriteAllBytes(temp, bytes);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(bytes);
        f.Flush(flushToDisk: true);
    }

    /// <summary>
    /// Writes a folder atomically: <paramref name="write"/> fills a hidden staging folder next to
    /// <paramref name="directory"/>, which then replaces it; on failure the staging folder is removed.
    /// </summary>
    public static void WriteDirectory(string directory, Action<string> write)
    {
        var full = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException("Invalid directory", nameof(directory));
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            write(staging);
            ReplaceDirectory(staging, full);
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    /// <summary>Saves a module's state dict as safetensors (CPU, contiguous, official key names) and fsyncs it.</summary>
    public static void SaveWeights(TorchSharp.torch.nn.Module module, string path)
    {
        using (TorchSharp.torch.NewDisposeScope())
        {
            var sd = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().contiguous());
            TorchSharp.PyBridge.Safetensors.SaveStateDict(path, sd);
        }
        Fsync(path);
    }

    /// <summary>Moves <paramref name="staging"/> to <paramref name="target"/>, replacing an existing folder with two renames.</summary>
    public static void ReplaceDirectory(string staging, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            return;
        }
        var old = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
        Directory.Move(target, old);
        Directory.Move(staging, target);
        Directory.Delete(old, recursive: true);
    }
}
