using System.IO.Compression;
using BeitV2.Ml.Imaging;

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
    /// names. Every resolved path is checked again to lie inside the extraction folder. The sizes the
    /// archive declares are checked before anything is written, and the inflated bytes are counted
    /// while reading, so the limits hold whatever the headers say.</para>
    /// <para>Content: every image (and mask) must decode during the import, not at training time: each
    /// file is inflated into memory (at most <see cref="ArchiveLimits.MaxFileBytes"/>), its magic number
    /// checked after the first chunk, its header dimensions checked against
    /// <see cref="ArchiveLimits.MaxImagePixels"/> before its pixels are decoded, and only then written.
    /// Masks of a segmentation set are read as class-index PNGs and must match their image's size and
    /// the class list. A 2 MB zip of zero-filled "PNGs" therefore writes nothing.</para>
    /// <para>Skipped (not extracted, not counted): folder entries, <c>__MACOSX/</c> and every name
    /// starting with '.' (e.g. <c>.DS_Store</c>, <c>._photo.jpg</c>), <c>Thumbs.db</c>, <c>desktop.ini</c>,
    /// and every file that is neither an image (<see cref="ImageFiles.Extensions"/>) nor <c>classes.txt</c>.</para>
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
    /// <exception cref="DatasetException">Unreadable or unsafe archive, a limit exceeded, an undecodable image or
    /// mask, no supported layout, or no room left (<see cref="DatasetError.InsufficientStorage"/>).</exception>
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
            var sizes = ExtractInto(zipStream, temp, limits);
            var root = Unwrap(temp);
            var descriptor = DatasetLayout.Detect(root);
            if (descriptor.Kind == DatasetKind.Segmentation) CheckMasks(descriptor, sizes);
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

    private enum EntryKind { Image, ClassList }

    /// <summary>Largest <c>classes.txt</c> (255 class names fit in a few KB).</summary>
    private const long MaxClassListBytes = 1024 * 1024;

    // Extracts the planned entries into `temp`; returns the size of every image written (by full path),
    // for the mask checks after the layout is known.
    private static Dictionary<string, (int Width, int Height)> ExtractInto(Stream zipStream, string temp, ArchiveLimits limits)
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
            var plan = new List<(ZipArchiveEntry Entry, string Path, string Name, EntryKind Kind)>();
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
                // Only what a dataset reader uses is written: images (and masks, which are PNGs) and class lists.
                // Everything else (read-me files, notebooks, arbitrary bytes) is skipped, not stored.
                EntryKind kind;
                if (ImageFiles.IsImage(relative)) kind = EntryKind.Image;
                else if (segments[^1] == SegmentationFolderDataset.ClassesFile) kind = EntryKind.ClassList;
                else continue;
                if (plan.Count >= limits.MaxFiles)
                    throw new DatasetException(DatasetError.TooLarge, $"The archive holds more than {limits.MaxFiles} files.");
                if (entry.Length > MaxBytes(kind, limits)) throw FileTooLarge(relative, MaxBytes(kind, limits));
                declared += entry.Length;
                if (declared > limits.MaxTotalBytes) throw TotalTooLarge(limits);
                if (declared > limits.AvailableBytes) throw NoRoom(limits);
                plan.Add((entry, path, relative, kind));
            }
            if (!plan.Any(p => p.Kind == EntryKind.Image))
                throw new DatasetException(DatasetError.InvalidLayout,
                    $"The archive contains no images (accepted extensions: {string.Join(" ", ImageFiles.Extensions)}).");

            // A file and a folder of the same name (a/b and a/b/c) collide; refuse rather than guess.
            var planned = plan.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var name in planned)
                for (int slash = name.IndexOf('/'); slash >= 0; slash = name.IndexOf('/', slash + 1))
                    if (planned.Contains(name[..slash]))
                        throw new DatasetException(DatasetError.InvalidArchive,
                            $"Archive entry '{Printable(name[..slash])}' is both a file and a folder.");

            // Each file is inflated into memory (at most MaxFileBytes, counted on the real bytes), checked
            // (images decode, header dimensions first), and only then written: a fake image costs no disk.
            var decoder = new ImageDecoder(new ImageLimits(limits.MaxImagePixels, limits.MaxFileBytes), applyExifOrientation: false);
            var sizes = new Dictionary<string, (int Width, int Height)>(StringComparer.Ordinal);
            long total = 0;
            var chunk = new byte[81920];
            foreach (var (entry, path, name, kind) in plan)
            {
                var bytes = Inflate(entry, name, kind, limits, chunk, ref total);
                if (kind == EntryKind.Image) sizes[path] = CheckImage(decoder, bytes, name);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
                output.Write(bytes);
            }
            return sizes;
        }
    }

    private static long MaxBytes(EntryKind kind, ArchiveLimits limits) =>
        kind == EntryKind.ClassList ? Math.Min(MaxClassListBytes, limits.MaxFileBytes) : limits.MaxFileBytes;

    // The entry's bytes, counted as they inflate against the per-file, total and room limits.
    private static byte[] Inflate(ZipArchiveEntry entry, string name, EntryKind kind, ArchiveLimits limits, byte[] chunk, ref long total)
    {
        var max = MaxBytes(kind, limits);
        var signatureChecked = kind != EntryKind.Image;
        try
        {
            using var input = entry.Open();
            using var buffer = new MemoryStream((int)Math.Clamp(entry.Length, 0, Math.Min(max, 1 << 20)));
            int read;
            while ((read = input.Read(chunk, 0, chunk.Length)) > 0)
            {
                total += read;
                if (buffer.Length + read > max) throw FileTooLarge(name, max);
                if (total > limits.MaxTotalBytes) throw TotalTooLarge(limits);
                if (total > limits.AvailableBytes) throw NoRoom(limits);
                buffer.Write(chunk, 0, read);
                // Zero-filled or random "images" stop here, after the first chunk, not after 32 MiB.
                if (!signatureChecked && buffer.Length >= SignatureBytes)
                {
                    if (!HasImageSignature(buffer.GetBuffer().AsSpan(0, SignatureBytes))) throw NotAnImage(name);
                    signatureChecked = true;
                }
            }
            if (!signatureChecked) throw NotAnImage(name);
            return buffer.ToArray();
        }
        catch (Exception ex) when (ex is InvalidDataException or NotSupportedException)
        {
            throw new DatasetException(DatasetError.InvalidArchive,
                $"Cannot read archive entry '{Printable(entry.FullName)}' ({ex.Message}).", ex);
        }
    }

    private const int SignatureBytes = 12;

    // The magic numbers of the accepted extensions (ImageFiles.Extensions): PNG, JPEG, GIF, BMP, WebP.
    private static bool HasImageSignature(ReadOnlySpan<byte> head) =>
        head.StartsWith((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        || head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
        || head.StartsWith("GIF87a"u8) || head.StartsWith("GIF89a"u8)
        || head.StartsWith("BM"u8)
        || (head.StartsWith("RIFF"u8) && head[8..12].SequenceEqual("WEBP"u8));

    // Decodes the whole image (header first: the pixel limit is checked before any pixel memory) and returns its size.
    private static (int Width, int Height) CheckImage(ImageDecoder decoder, byte[] bytes, string name)
    {
        try
        {
            using var image = decoder.Decode(bytes);
            return (image.Width, image.Height);
        }
        catch (ImageDecodeException ex)
        {
            throw new DatasetException(DatasetError.CorruptImage, $"Archive entry '{Printable(name)}' is not a usable image: {ex.Message}", ex);
        }
    }

    // Every mask must be a class-index PNG of its image's size, with known classes: checked now, not at training time.
    private static void CheckMasks(DatasetDescriptor descriptor, Dictionary<string, (int Width, int Height)> sizes)
    {
        var set = new SegmentationFolderDataset(descriptor.Root, classNames: descriptor.Classes);
        var classes = descriptor.Classes.Count;
        for (int i = 0; i < set.Count; i++)
        {
            var maskPath = set.GetMaskPath(i);
            var maskName = Path.GetRelativePath(descriptor.Root, maskPath).Replace('\\', '/');
            var (indices, width, height) = ClassMapPng.Read(File.ReadAllBytes(maskPath), maskName);
            var imagePath = set.GetImagePath(i);
            if (sizes.TryGetValue(imagePath, out var size) && (size.Width != width || size.Height != height))
                throw new DatasetException(DatasetError.InvalidMask,
                    $"Mask '{maskName}' is {width}x{height} but its image '{Path.GetRelativePath(descriptor.Root, imagePath).Replace('\\', '/')}' "
                    + $"is {size.Width}x{size.Height}; a mask must have the size of its image.");
            foreach (byte v in indices)
                if (v >= classes && v != ImageSample.IgnoreIndex)
                    throw new DatasetException(DatasetError.InvalidMask,
                        $"Mask '{maskName}' contains class {v}, but there are only {classes} classes (0..{classes - 1}; 255 = ignore).");
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

    private static DatasetException FileTooLarge(string name, long max) =>
        new(DatasetError.TooLarge, $"Archive entry '{Printable(name)}' is larger than {max} bytes.");

    private static DatasetException TotalTooLarge(ArchiveLimits limits) =>
        new(DatasetError.TooLarge, $"The archive expands to more than {limits.MaxTotalBytes} bytes, the largest dataset accepted.");

    private static DatasetException NoRoom(ArchiveLimits limits) =>
        new(DatasetError.InsufficientStorage,
            $"The archive expands to more than the {limits.AvailableBytes} bytes of storage left for datasets.");

    private static DatasetException NotAnImage(string name) =>
        new(DatasetError.CorruptImage,
            $"Archive entry '{Printable(name)}' is not an image: its bytes do not start like a PNG, JPEG, GIF, BMP or WebP file.");

    private static string Printable(string name) =>
        new(name.Select(c => char.IsControl(c) ? '?' : c).ToArray());

    private static void TryDelete(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
