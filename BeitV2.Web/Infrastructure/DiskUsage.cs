namespace BeitV2.Web.Infrastructure;

/// <summary>Bytes held by a folder tree, measured while other code may be adding and removing files in it.</summary>
public static class DiskUsage
{
    /// <summary>The total length of the files below <paramref name="path"/> (hidden ones included; links not followed); 0 when it is gone.</summary>
    public static long Of(string path)
    {
        long total = 0;
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(path));
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            try
            {
                foreach (var entry in dir.EnumerateFileSystemInfos("*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = true }))
                {
                    if (entry.LinkTarget is not null) continue;
                    if (entry is DirectoryInfo sub) pending.Push(sub);
                    else if (entry is FileInfo file) total += file.Length;
                }
            }
            // A checkpoint pruned or a job deleted meanwhile: what is gone takes no room.
            catch (DirectoryNotFoundException) { }
            catch (FileNotFoundException) { }
        }
        return total;
    }
}
