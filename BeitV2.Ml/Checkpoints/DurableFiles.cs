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

    public static void WriteAllBytes(string path, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(bytes);
        f.Flush(flushToDisk: true);
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
