namespace BeitV2.Ml.Data;

/// <summary>Which files the folder datasets treat as images, and the order they list them in.</summary>
public static class ImageFiles
{
    /// <summary>Accepted extensions, compared case-insensitively.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"];

    /// <summary>True when the name has an accepted extension and is not hidden (see <see cref="IsHidden"/>).</summary>
    public static bool IsImage(string path)
    {
        var name = Path.GetFileName(path);
        if (IsHidden(name)) return false;
        var ext = Path.GetExtension(name);
        foreach (var e in Extensions)
            if (ext.Equals(e, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }

    /// <summary>
    /// Names starting with '.' (e.g. macOS <c>._photo.jpg</c> resource forks, <c>.DS_Store</c>) and
    /// <c>__MACOSX</c> are skipped. torchvision's ImageFolder would list them; skipping them avoids
    /// failing on the junk that archivers add.
    /// </summary>
    public static bool IsHidden(string name) => name.StartsWith('.') || name == "__MACOSX";

    /// <summary>The image files directly in <paramref name="directory"/>, sorted ordinally by name.</summary>
    public static List<string> ListFlat(string directory)
    {
        var files = Directory.EnumerateFiles(directory).Where(IsImage).ToList();
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>
    /// The image files below <paramref name="directory"/> at any depth in torchvision's order:
    /// <c>sorted(os.walk(dir))</c> sorts the folders by path, then each folder's files by name
    /// (ordinal comparison; hidden folders are not entered).
    /// </summary>
    public static List<string> ListRecursive(string directory)
    {
        var folders = new List<string> { directory };
        for (int i = 0; i < folders.Count; i++)
            folders.AddRange(Directory.EnumerateDirectories(folders[i]).Where(d => !IsHidden(Path.GetFileName(d))));
        folders.Sort(StringComparer.Ordinal);
        var files = new List<string>();
        foreach (var folder in folders) files.AddRange(ListFlat(folder));
        return files;
    }
}
