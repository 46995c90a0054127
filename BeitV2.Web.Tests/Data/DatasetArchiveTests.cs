using BeitV2.Ml.Data;

namespace BeitV2.Web.Tests.Data;

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
}
