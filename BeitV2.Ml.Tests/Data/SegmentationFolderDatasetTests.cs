using BeitV2.Ml.Data;

namespace BeitV2.Ml.Tests.Data;

public sealed class SegmentationFolderDatasetTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static byte[] Indices(int width, int height, Func<int, int, int> f)
    {
        var m = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) m[y * width + x] = (byte)f(x, y);
        return m;
    }

    [Fact]
    public void PairsImagesAndMasksByStem_AndReadsClassIndices()
    {
        var m1 = Indices(5, 4, (x, y) => (x + y) % 3);
        var m2 = Indices(3, 3, (x, y) => x == 1 ? 255 : 2);
        DataTestFiles.WriteRgbPng(_dir.Combine("images", "b.png"), 3, 3, 9, 9, 9);
        DataTestFiles.WriteRgbPng(_dir.Combine("images", "a.png"), 5, 4, 1, 2, 3);
        DataTestFiles.WriteGreyMask(_dir.Combine("masks", "a.png"), m1, 5, 4);
        DataTestFiles.WriteGreyMask(_dir.Combine("masks", "b.png"), m2, 3, 3);
        File.WriteAllText(_dir.Combine("classes.txt"), "sky\nroad\ncar\n\n");

        var ds = new SegmentationFolderDataset(_dir.Path);

        Assert.Equal(DatasetKind.Segmentation, ds.Kind);
        Assert.Equal(2, ds.Count);
        Assert.Equal(new[] { "sky", "road", "car" }, ds.ClassNames);
        var a = ds.Get(0);
        Assert.Equal(-1, a.Label);
        Assert.Equal((5, 4), (a.Width, a.Height));
        Assert.Equal(m1, a.Mask);
        Assert.Equal(m2, ds.Get(1).Mask); // 255 = ignore is allowed
        Assert.Equal(new[] { 0, 1, 2 }, ds.ScanClassIndices());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    public void PaletteMasks_YieldTheirIndicesNotColours(int bitDepth)
    {
        int max = (1 << bitDepth) - 1;
        var indices = Indices(13, 5, (x, y) => (x * 7 + y * 3) % (max + 1));
        var (decoded, w, h) = ClassMapPng.Read(DataTestFiles.PalettePng(indices, 13, 5, bitDepth), "m.png");
        Assert.Equal((13, 5), (w, h));
        Assert.Equal(indices, decoded);
    }

    [Fact]
    public void UnsupportedMasks_AreRefusedWithAReason()
    {
        var rgb = DataTestFiles.RgbPngBytes(2, 2, 1, 2, 3);
        var ex = Assert.Throws<DatasetException>(() => ClassMapPng.Read(rgb, "m.png"));
        Assert.Equal(DatasetError.InvalidMask, ex.Error);
        Assert.Contains("RGB", ex.Message);

        var bad = DataTestFiles.GreyMaskBytes(new byte[4], 2, 2);
        bad[bad.Length - 20] ^= 0xFF; // inside the IDAT chunk: CRC mismatch
        Assert.Contains("CRC", Assert.Throws<DatasetException>(() => ClassMapPng.Read(bad, "m.png")).Message);
        Assert.Throws<DatasetException>(() => ClassMapPng.Read("GIF89a"u8, "m.png"));
    }

    [Fact]
    public void SizeMismatch_UnknownClass_AndUnpairedFiles_AreClearErrors()
    {
        DataTestFiles.WriteRgbPng(_dir.Combine("images", "a.jpg"), 4, 4, 1, 2, 3);
        DataTestFiles.WriteGreyMask(_dir.Combine("masks", "a.png"), new byte[9], 3, 3);
        DataTestFiles.WriteRgbPng(_dir.Combine("images", "b.png"), 2, 2, 1, 2, 3);
        DataTestFiles.WriteGreyMask(_dir.Combine("masks", "b.png"), [0, 1, 7, 255], 2, 2);
        File.WriteAllText(_dir.Combine("classes.txt"), "a\nb\n");
        var ds = new SegmentationFolderDataset(_dir.Path);

        var size = Assert.Throws<DatasetException>(() => ds.Get(0));
        Assert.Equal(DatasetError.InvalidMask, size.Error);
        Assert.Contains("3x3", size.Message);
        Assert.Contains("4x4", size.Message);
        var cls = Assert.Throws<DatasetException>(() => ds.Get(1));
        Assert.Contains("class 7", cls.Message);

        DataTestFiles.WriteRgbPng(_dir.Combine("images", "c.png"), 2, 2, 1, 2, 3);
        var unpaired = Assert.Throws<DatasetException>(() => new SegmentationFolderDataset(_dir.Path));
        Assert.Equal(DatasetError.InvalidLayout, unpaired.Error);
        Assert.Contains("c.png", unpaired.Message);
    }

    [Fact]
    public void ClassesFile_WithAHole_IsRejected()
    {
        DataTestFiles.WriteRgbPng(_dir.Combine("images", "a.png"), 2, 2, 1, 2, 3);
        DataTestFiles.WriteGreyMask(_dir.Combine("masks", "a.png"), new byte[4], 2, 2);
        File.WriteAllText(_dir.Combine("classes.txt"), "a\n\nc\n");
        Assert.Equal(DatasetError.InvalidData,
            Assert.Throws<DatasetException>(() => new SegmentationFolderDataset(_dir.Path)).Error);
    }
}
