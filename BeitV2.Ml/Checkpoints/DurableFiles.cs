using System.Security.Cryptography;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Crash-safe file helpers shared by model packages and training checkpoints: files are fsynced
/// before a folder is renamed into place, so a crash leaves either the old or the new folder; on
/// Linux the parent directory is fsynced after the rename, so the new name itself survives a crash.
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
            FsyncDirectory(Path.GetDirectoryName(full)!);
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
        var parent = Path.GetDirectoryName(Path.GetFullPath(target))!;
        if (!Directory.Exists(target))
        {
            Directory.Move(staging, target);
            FsyncDirectory(parent);
            return;
        }
        var old = Path.Combine(parent, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
        Directory.Move(target, old);
        Directory.Move(staging, target);
        FsyncDirectory(parent);
        Directory.Delete(old, recursive: true);
    }

    /// <summary>
    /// Flushes <paramref name="directory"/>'s entries to disk (Linux: open it read-only and fsync it), so a file renamed
    /// or created in it is still there under its new name after a crash. Best effort: a file system that refuses to fsync
    /// a directory (or another OS) leaves it to the file system; this never fails and logs nothing.
    /// </summary>
    public static void FsyncDirectory(string directory) => TryFsyncDirectory(directory);

    /// <summary><see cref="FsyncDirectory"/>, telling whether the directory was fsynced (false: another OS, or the call failed).</summary>
    public static bool TryFsyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return PosixFiles.FsyncDirectory(directory) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;   // no libc to call: nothing more can be done than the rename itself
        }
    }

    /// <summary>
    /// Creates <paramref name="path"/> holding <paramref name="bytes"/> unless a file of that name exists, atomically: the
    /// bytes go to a hidden file beside it, flushed to disk, which is then hard-linked under the name (<c>link</c> fails
    /// when the name exists, on local file systems and NFS alike). Two writers at the same moment leave exactly one of
    /// them's file, whole; a reader never sees a half-written one.
    /// </summary>
    /// <returns>True when this call created the file; false when one was there (its content is left alone). The bytes
    /// should be unique to the caller (a random id): they tell an NFS retransmission apart from another writer's file.</returns>
    public static bool CreateNew(string path, byte[] bytes)
    {
        var full = Path.GetFullPath(path);
        var parent = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            WriteAllBytes(temp, bytes);
            if (!OperatingSystem.IsLinux()) return TryMoveNoReplace(temp, full);
            int error;
            try { error = PosixFiles.Link(temp, full); }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { error = -1; }
            // NFS: a retransmitted link whose first reply was lost reports EEXIST although it made the link; the content
            // tells (the callers' bytes are unique: a random id).
            if (error == PosixFiles.AlreadyExists) return SameContent(full, bytes);
            if (error != 0) return TryMoveNoReplace(temp, full);   // no hard links on this file system
            FsyncDirectory(parent);
            return true;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static bool TryMoveNoReplace(string temp, string full)
    {
        try
        {
            File.Move(temp, full, overwrite: false);
            FsyncDirectory(Path.GetDirectoryName(full)!);
            return true;
        }
        catch (IOException) when (File.Exists(full))
        {
            return false;
        }
    }

    private static bool SameContent(string path, byte[] bytes)
    {
        try { return File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes); }
        catch (IOException) { return false; }
    }
}
