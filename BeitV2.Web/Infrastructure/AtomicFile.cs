using BeitV2.Ml.Checkpoints;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// Writes a file under a temporary name, flushes it to disk and renames it over the target; on Linux the folder is
/// then fsynced too (best effort), so after a crash the target holds the old bytes or the new ones, never nothing.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string contents)
    {
        var tmp = path + $".tmp-{Guid.NewGuid():N}";
        using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
        using (var w = new StreamWriter(f))
        {
            w.Write(contents);
            w.Flush();
            f.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        DurableFiles.FsyncDirectory(FolderOf(path));
    }

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> contents)
    {
        var tmp = path + $".tmp-{Guid.NewGuid():N}";
        try
        {
            using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                f.Write(contents);
                f.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            // A failed write leaves neither a half-written target nor the temporary file.
            File.Delete(tmp);
            throw;
        }
        DurableFiles.FsyncDirectory(FolderOf(path));
    }

    private static string FolderOf(string path) => Path.GetDirectoryName(Path.GetFullPath(path))!;
}
