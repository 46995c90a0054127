using BeitV2.Ml.Data;

namespace BeitV2.Ml.Tests.Data;

public sealed class DatasetArchiveTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (string, byte[], int?) Png(string name, byte shade = 50) => (name, DataTestFiles.RgbPngBytes(3, 2, shade, 0, 0), null);

    private static (string, byte[], int?) File(string name, byte[] data, int? mode = null) => (name, data, mode);

    private string Target => _dir.Combine("datasets", "upload1");

    // Everything the importer left beside the target (temporary folders must be gone).
    private string[] Leftovers() => Directory.Exists(_dir.Combine("datasets"))
        ? Directory.GetFileSystemEntries(_dir.Combine("datasets")).Select(p => Path.GetFileName(p)).Where(n => n != "upload1").ToArray()
        : [];

    [Fact]
    public void ClassFolders_InsideAWrapperFolder_BecomeAClassificationSet()
    {
        using var zip = DataTestFiles.Zip(
            Png("my data/cats/1.png"), Png("my data/cats/2.png"), Png("my data/dogs/a.png"),
            Png("__MACOSX/my data/cats/._1.png"), File("my data/.DS_Store", [1, 2, 3]), File("my data/dogs/", []));

        var d = DatasetArchive.Extract(zip, Target);

        Assert.Equal(DatasetKind.Classification, d.Kind);
        Assert.Equal(3, d.ImageCount);
        Assert.Equal(new[] { "cats", "dogs" }, d.Classes);
        Assert.Equal(Path.GetFullPath(Target), d.Root);
        Assert.True(System.IO.File.Exists(Path.Combine(Target, "cats", "2.png")));
        Assert.False(Directory.Exists(Path.Combine(Target, "__MACOSX")));
        Assert.Empty(Leftovers());

        var ds = d.Open();
        Assert.Equal(3, ds.Count);
        Assert.Equal(1, ds.Get(2).Label);
    }

    [Fact]
    public void ImagesAndMasks_BecomeASegmentationSet_WithScannedClassesWithoutClassesTxt()
    {
        using var zip = DataTestFiles.Zip(
            Png("images/a.png"), Png("images/b.png"),
            File("masks/a.png", DataTestFiles.GreyMaskBytes([0, 1, 2, 255, 0, 1], 3, 2)),
            File("masks/b.png", DataTestFiles.GreyMaskBytes([4, 0, 0, 0, 0, 0], 3, 2)));

        var d = DatasetArchive.Extract(zip, Target);

        Assert.Equal(DatasetKind.Segmentation, d.Kind);
        Assert.Equal(2, d.ImageCount);
        Assert.Equal(new[] { "class 0", "class 1", "class 2", "class 3", "class 4" }, d.Classes);
        var ds = d.Open();
        Assert.Equal(5, ds.ClassNames.Count);
        Assert.Equal(new byte[] { 4, 0, 0, 0, 0, 0 }, ds.Get(1).Mask);
    }

    [Fact]
    public void FlatImages_BecomeAnUnlabelledSet()
    {
        using var zip = DataTestFiles.Zip(Png("x.png"), Png("y.png"), File("readme.txt", "hi"u8.ToArray()));
        var d = DatasetArchive.Extract(zip, Target);
        Assert.Equal(DatasetKind.Unlabelled, d.Kind);
        Assert.Equal(2, d.ImageCount);
        Assert.Empty(d.Classes);
    }

    [Theory]
    [InlineData("../evil.png")]
    [InlineData("ok/../../evil.png")]
    [InlineData("/etc/evil.png")]
    [InlineData("..\\evil.png")]
    [InlineData("C:/evil.png")]
    [InlineData("a/./b.png")]
    public void ZipSlip_IsRejected_AndNothingIsWritten(string name)
    {
        using var zip = DataTestFiles.Zip(Png("cats/1.png"), Png(name));
        var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target));
        Assert.Equal(DatasetError.UnsafeArchive, ex.Error);
        Assert.False(Directory.Exists(Target));
        Assert.False(System.IO.File.Exists(_dir.Combine("evil.png")));
        Assert.False(System.IO.File.Exists(_dir.Combine("datasets", "evil.png")));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void Symlinks_AreRejected()
    {
        const int symlink = 0xA1FF; // S_IFLNK | 0777
        using var zip = DataTestFiles.Zip(Png("cats/1.png"), File("cats/link.png", "/etc/passwd"u8.ToArray(), symlink));
        var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target));
        Assert.Equal(DatasetError.UnsafeArchive, ex.Error);
        Assert.Contains("symbolic link", ex.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void Limits_AreEnforcedOnTheInflatedBytes()
    {
        // 1 MB of zeros compresses to ~1 KB: the declared size is checked, and the inflated count too.
        using (var zip = DataTestFiles.Zip(File("a/big.png", new byte[1_000_000]), Png("b/1.png")))
        {
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target, new ArchiveLimits(500_000, 10, 10_000_000)));
            Assert.Equal(DatasetError.TooLarge, ex.Error);
        }
        using (var zip = DataTestFiles.Zip(File("a/big.png", new byte[1_000_000]), Png("b/1.png")))
        {
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target, new ArchiveLimits(10_000_000, 10, 100_000)));
            Assert.Equal(DatasetError.TooLarge, ex.Error);
        }
        using (var zip = DataTestFiles.Zip(Png("a/1.png"), Png("a/2.png"), Png("a/3.png")))
        {
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target, new ArchiveLimits(10_000_000, 2, 100_000)));
            Assert.Equal(DatasetError.TooLarge, ex.Error);
            Assert.Contains("2 files", ex.Message);
        }
        Assert.False(Directory.Exists(Target));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void BadArchives_AndBadLayouts_AreReported()
    {
        using (var notZip = new MemoryStream("this is not a zip file at all"u8.ToArray()))
            Assert.Equal(DatasetError.InvalidArchive,
                Assert.Throws<DatasetException>(() => DatasetArchive.Extract(notZip, Target)).Error);

        using (var noImages = DataTestFiles.Zip(File("notes/readme.txt", [1])))
            Assert.Equal(DatasetError.InvalidLayout,
                Assert.Throws<DatasetException>(() => DatasetArchive.Extract(noImages, Target)).Error);

        using (var unpaired = DataTestFiles.Zip(Png("images/a.png"), Png("images/b.png"),
                   File("masks/a.png", DataTestFiles.GreyMaskBytes(new byte[6], 3, 2))))
            Assert.Contains("b.png", Assert.Throws<DatasetException>(() => DatasetArchive.Extract(unpaired, Target)).Message);

        using (var duplicate = DataTestFiles.Zip(Png("a/1.png"), Png("a/1.png")))
            Assert.Equal(DatasetError.UnsafeArchive,
                Assert.Throws<DatasetException>(() => DatasetArchive.Extract(duplicate, Target)).Error);

        Assert.False(Directory.Exists(Target));
        Assert.Empty(Leftovers());

        Directory.CreateDirectory(Target);
        using var ok = DataTestFiles.Zip(Png("a.png"));
        Assert.Throws<IOException>(() => DatasetArchive.Extract(ok, Target));
    }

    // ---------------------------------------------------------------- content checked during the import

    [Fact]
    public void ZeroFilledPngs_AreRefusedAtTheFirstFile_AndNothingIsWritten()
    {
        // 8 × 16 MiB of zeros named .png: a 128 KB zip that used to be extracted in full (the "2 MB zip writes 2 GiB" bomb).
        var zeros = new byte[16 * 1024 * 1024];
        using var zip = DataTestFiles.Zip(System.IO.Compression.CompressionLevel.SmallestSize,
            Enumerable.Range(0, 8).Select(i => File($"c/{i}.png", zeros)).ToArray());
        Assert.True(zip.Length < 1_000_000, $"{zip.Length} bytes");

        var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target));

        Assert.Equal(DatasetError.CorruptImage, ex.Error);
        Assert.Contains("'c/0.png' is not an image", ex.Message);
        Assert.False(Directory.Exists(Target));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void AnImageWhoseHeaderDeclaresHugeDimensions_IsRefusedBeforeDecoding()
    {
        // 100000 × 100000 in a 60-byte PNG: decoding it would need 30 GB.
        using var zip = DataTestFiles.Zip(Png("c/ok.png"), File("c/huge.png", DataTestFiles.DeclaredSizePng(100_000, 100_000)));
        var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target));
        Assert.Equal(DatasetError.CorruptImage, ex.Error);
        Assert.Contains("c/huge.png", ex.Message);
        Assert.Contains("100000x100000", ex.Message);
        Assert.False(Directory.Exists(Target));

        // The pixel limit is the archive's own: a 3x2 image passes the default, not a limit of 5 pixels.
        using var small = DataTestFiles.Zip(Png("c/ok.png"));
        var limited = ArchiveLimits.Default with { MaxImagePixels = 5 };
        Assert.Equal(DatasetError.CorruptImage, Assert.Throws<DatasetException>(() => DatasetArchive.Extract(small, Target, limited)).Error);
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void ATruncatedImage_IsRefusedAtImport_NotAtTrainingTime()
    {
        var png = DataTestFiles.RgbPngBytes(64, 64, 10, 200, 30);
        using var zip = DataTestFiles.Zip(Png("c/1.png"), File("c/2.png", png[..(png.Length / 2)]));
        var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target));
        Assert.Equal(DatasetError.CorruptImage, ex.Error);
        Assert.Contains("c/2.png", ex.Message);
        Assert.False(Directory.Exists(Target));
    }

    [Fact]
    public void FilesThatAreNeitherImagesNorClassLists_AreNotWritten()
    {
        var noise = new byte[200_000];
        new Random(1).NextBytes(noise);
        using var zip = DataTestFiles.Zip(Png("cats/1.png"), Png("dogs/1.png"), File("cats/payload.bin", noise), File("notes.txt", "hi"u8.ToArray()));
        var d = DatasetArchive.Extract(zip, Target);
        Assert.Equal(2, d.ImageCount);
        Assert.Equal(["cats/1.png", "dogs/1.png"],
            Directory.EnumerateFiles(Target, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(Target, f).Replace('\\', '/')).Order());
    }

    [Fact]
    public void Masks_AreCheckedAtImport_EvenWithAClassList()
    {
        var classes = File("classes.txt", "background\nshirt\n"u8.ToArray());
        using (var wrongSize = DataTestFiles.Zip(Png("images/a.png"), File("masks/a.png", DataTestFiles.GreyMaskBytes(new byte[16], 4, 4)), classes))
        {
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(wrongSize, Target));
            Assert.Equal(DatasetError.InvalidMask, ex.Error);
            Assert.Contains("4x4", ex.Message);
        }
        using (var unknownClass = DataTestFiles.Zip(Png("images/a.png"), File("masks/a.png", DataTestFiles.GreyMaskBytes([0, 1, 7, 0, 0, 255], 3, 2)), classes))
        {
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(unknownClass, Target));
            Assert.Equal(DatasetError.InvalidMask, ex.Error);
            Assert.Contains("class 7", ex.Message);
        }
        using (var rgbMask = DataTestFiles.Zip(Png("images/a.png"), File("masks/a.png", DataTestFiles.RgbPngBytes(3, 2, 1, 2, 3)), classes))
            Assert.Equal(DatasetError.InvalidMask, Assert.Throws<DatasetException>(() => DatasetArchive.Extract(rgbMask, Target)).Error);
        Assert.False(Directory.Exists(Target));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void DeclaredSizesThatLie_NeverWriteMoreThanTheLimits()
    {
        // A real PNG followed by 2 MB of zeros, whose headers claim 300 bytes: the declared total passes the
        // checks; the inflated bytes are either cut at the declared size by the zip reader or counted and refused.
        var png = DataTestFiles.RgbPngBytes(3, 2, 1, 2, 3);
        var zip = DataTestFiles.Zip(Png("c/1.png"), File("c/lie.png", [.. png, .. new byte[2_000_000]]));
        DataTestFiles.PatchUncompressedSize(zip, "c/lie.png", 300);
        using (zip)
        {
            try
            {
                DatasetArchive.Extract(zip, Target, new ArchiveLimits(10_000_000, 10, 100_000));
                Assert.InRange(new FileInfo(Path.Combine(Target, "lie.png")).Length, png.Length, 300); // "c/" was the single top folder
            }
            catch (DatasetException ex)
            {
                Assert.Contains(ex.Error, new[] { DatasetError.TooLarge, DatasetError.InvalidArchive });
                Assert.False(Directory.Exists(Target));
            }
        }
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void AvailableRoom_IsCheckedOnTheDeclaredSizes_AndOnTheInflatedBytes()
    {
        var noise = DataTestFiles.NoisePngBytes(200, 200, seed: 3); // ~120 KB, incompressible
        using (var zip = DataTestFiles.Zip(File("c/1.png", noise), File("c/2.png", noise)))
        {
            var limits = ArchiveLimits.Default with { AvailableBytes = noise.Length + 1000 };
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(zip, Target, limits));
            Assert.Equal(DatasetError.InsufficientStorage, ex.Error);
        }
        var lying = DataTestFiles.Zip(File("c/1.png", noise), File("c/2.png", noise));
        DataTestFiles.PatchUncompressedSize(lying, "c/2.png", 10);
        using (lying)
        {
            var limits = ArchiveLimits.Default with { AvailableBytes = noise.Length + 1000 };
            var ex = Assert.Throws<DatasetException>(() => DatasetArchive.Extract(lying, Target, limits));
            // Cut at the declared 10 bytes by the zip reader (then not an image), or counted past the room.
            Assert.Contains(ex.Error, new[] { DatasetError.InsufficientStorage, DatasetError.InvalidArchive, DatasetError.CorruptImage });
        }
        Assert.False(Directory.Exists(Target));
        Assert.Empty(Leftovers());
        using (var fits = DataTestFiles.Zip(File("c/1.png", noise), File("c/2.png", noise)))
            Assert.Equal(2, DatasetArchive.Extract(fits, Target, ArchiveLimits.Default with { AvailableBytes = 2 * noise.Length }).ImageCount);
    }
}
