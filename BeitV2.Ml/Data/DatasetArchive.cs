using System.IO.Compression;

namespace BeitV2.Ml.Data;

/// <summary>Safe import of an uploaded zip archive as a dataset folder.</summary>
public static class DatasetArchive
{
    private const int UnixFileTypeMask = 0xF000;
    private const int UnixSymlink = 0xA000;

    /// <summary>
    /// Extracts <paramref name="zipStream"/> into the new folder <paramref name="targetDirectory"/>
    /// and detects its layout (<see cref="DatasetLayout.Detect"/>).
    /// </summary>
    /// <remarks>
    /// <para>Safety: entry names are checked before anything is written. Absolute paths, drive
    /// letters, <c>..</c> or <c>.</c> segments, backslash-separated traversal, control characters and
    /// symbolic links (Unix mode in the external attributes) are refused ("zip slip"), as are duplicate
    /// names. Every resolved path is checked again to lie inside the extraction folder. The inflated
    /// bytes are counted while copying, so the limits hold whatever sizes the archive declares.</para>
    /// <para>Skipped (not extracted, not counted): folder entries, <c>__MACOSX/</c> and every name
    /// starting with '.' (e.g. <c>.DS_Store</c>, <c>._photo.jpg</c>), <c>Thumbs.db</c>, <c>desktop.ini</c>.</para>
    /// <para>Atomicity: the archive is extracted into a hidden temporary sibling of the target
    /// (same file system), checked, and then renamed to the target, so the target either appears
    /// complete or not at all; the temporary folder is removed on failure. If the archive holds a
    /// single top-level folder (as when a folder is zipped), that folder becomes the dataset root,
    /// repeatedly; a single class folder therefore reads as an unlabelled set.</para>
    /// </remarks>
    /// <param name="zipStream">The archive; read, not closed. A seekable stream avoids buffering it in memory.</param>
    /// <param name="targetDirectory">Folder to create; must not exist yet (its parent is created if needed).</param>
    /// <param name="limits">Size limits; <see cref="ArchiveLimits.Default"/> when null.</param>
    /// <returns>The layout found, with <see cref="DatasetDescriptor.Root"/> = the target folder.</returns>
    /// <exception cref="DatasetException">Unreadable or unsafe archive, a limit exceeded, or no supported layout.</exception>
    /// <exception cref="IOException">The target already exists, or the file system failed.</exception>
    public static DatasetDescriptor Extract(Stream zipStream, string targetDirectory, ArchiveLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(zipStream);
        ArgumentException.ThrowIfNullOrEmpty(targetDirectory);
        limits = (limits ?? ArchiveLimits.Default).Validate();
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(targetDirectory));
        if (Directory.Exists(target) || File.Exists(target))
            throw new IOException($"The dataset folder '{targetDirectory}' already exists.");
        var parent = Path.GetDirectoryName(target) ?? throw new IOException($"'{targetDirectory}' has no parent folder.");
        Directory.CreateDirectory(parent);

        var temp = Path.Combine(parent, $".{Path.GetFileName(target)}.extract-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            ExtractInto(zipStream, temp, limits);
            var root = Unwrap(temp);
            var descriptor = DatasetLayout.Detect(root);
            Directory.Move(root, target);
            if (root != temp) Directory.Delete(temp, recursive: true);
            return descriptor with { Root = target };
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void ExtractInto(Stream zipStream, string temp, ArchiveLimits limits)
    {
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(zipStream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException ex)
        {
            throw new DatasetException(DatasetError.InvalidArchive, $"The upload is not a readable zip archive ({ex.Message}).", ex);
        }

        using (archive)
        {
            // Plan first: nothing is written unless every name is safe and the declared sizes fit.
            var plan = new List<(ZipArchiveEntry Entry, string Path)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            long declared = 0;
            var prefix = temp + Path.DirectorySeparatorChar;
            foreach (var entry in archive.Entries)
            {
                var segments = CheckName(entry);
                if (segments is null) continue; // folder entry or junk
                if (((entry.ExternalAttributes >> 16) & UnixFileTypeMask) == UnixSymlink)
                    throw Unsafe(entry, "is a symbolic link");
                var relative = string.Join('/', segments);
                if (!names.Add(relative)) throw Unsafe(entry, "appears twice in the archive");
                var path = Path.GetFullPath(Path.Combine([temp, .. segments]));
                if (!path.StartsWith(prefix, StringComparison.Ordinal)) throw Unsafe(entry, "points outside the extraction folder");
                if (plan.Count >= limits.MaxFiles)
                    throw new DatasetException(DatasetError.TooLarge, $"The archive holds more than {limits.MaxFiles} files.");
                if (entry.Length > limits.MaxFileBytes) throw FileTooLarge(relative, limits);
                declared += entry.Length;
                if (declared > limits.MaxTotalBytes) throw TotalTooLarge(limits);
                plan.Add((entry, path));
            }
            if (plan.Count == 0)
                throw new DatasetException(DatasetError.InvalidLayout, "The archive contains no files.");

            // A file and a folder of the same name (a/b and a/b/c) collide; refuse rather than guess.
            foreach (var name in names)
                for (int slash = name.IndexOf('/'); slash >= 0; slash = name.IndexOf('/', slash + 1))
                    if (names.Contains(name[..slash]))
                        throw new DatasetException(DatasetError.InvalidArchive,
                            $"Archive entry '{name[..slash]}' is both a file and a folder.");

            long total = 0;
            var buffer = new byte[81920];
            foreach (var (entry, path) in plan)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                try
                {
                    using var input = entry.Open();
                    using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                    long written = 0;
                    int read;
                    while ((read = input.Read(buffer, 0, buffer.Length)) > 0)
                    {
                        written += read;
                        total += read;
                        if (written > limits.MaxFileBytes) throw FileTooLarge(entry.FullName, limits);
                        if (total > limits.MaxTotalBytes) throw TotalTooLarge(limits);
                        output.Write(buffer, 0, read);
                    }
                }
                catch (Exception ex) when (ex is InvalidDataException or NotSupportedException)
                {
                    throw new DatasetException(DatasetError.InvalidArchive,
                        $"Cannot read archive entry '{entry.FullName}' ({ex.Message}).", ex);
                }
            }
        }
    }

    // The entry's path segments, or null for entries that are skipped.
    private static string[]? CheckName(ZipArchiveEntry entry)
    {
        var name = entry.FullName;
        if (name.Length == 0) throw Unsafe(entry, "has an empty name");
        foreach (char c in name)
            if (char.IsControl(c)) throw Unsafe(entry, "contains control characters");
        if (name.Contains(':')) throw Unsafe(entry, "contains ':' (a drive letter or alternate data stream)");
        var normalised = name.Replace('\\', '/');
        if (normalised.StartsWith('/')) throw Unsafe(entry, "is an absolute path");
        if (normalised.EndsWith('/')) return null; // folder entry; folders are created as needed

        var segments = normalised.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var s in segments)
            if (s is "." or "..") throw Unsafe(entry, $"contains a '{s}' path segment");
        foreach (var s in segments)
            if (ImageFiles.IsHidden(s)) return null;
        var file = segments[^1];
        if (file.Equals("Thumbs.db", StringComparison.OrdinalIgnoreCase) || file.Equals("desktop.ini", StringComparison.OrdinalIgnoreCase))
            return null;
        return segments;
    }

    // Descends while the folder holds exactly one sub-folder and no files.
    private static string Unwrap(string root)
    {
        while (true)
        {
            if (Directory.EnumerateFiles(root).Any()) return root;
            var dirs = Directory.EnumerateDirectories(root).Take(2).ToList();
            if (dirs.Count != 1) return root;
            root = dirs[0];
        }
    }

    private static DatasetException Unsafe(ZipArchiveEntry entry, string problem) =>
        new(DatasetError.UnsafeArchive, $"Archive entry '{Printable(entry.FullName)}' {problem}; the archive was rejected.");

    private static DatasetException FileTooLarge(string name, ArchiveLimits limits) =>
        new(DatasetError.TooLarge, $"Archive entry '{Printable(name)}' is larger than {limits.MaxFileBytes} bytes.");

    private static DatasetException TotalTooLarge(ArchiveLimits limits) =>
        new(DatasetError.TooLarge, $"The archive expands to more than {limits.MaxTotalBytes} bytes.");

    private static string Printable(string name) =>
        new(name.Select(c => char.IsControl(c) ? '?' : c).ToArray());

    private static void TryDelete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
