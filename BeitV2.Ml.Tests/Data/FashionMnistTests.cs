using System.IO.Compression;
using BeitV2.Ml.Data;

namespace BeitV2.Ml.Tests.Data;

/// <summary>The real Fashion-MNIST files (Debian's dataset-fashion-mnist), read once per test run.</summary>
internal static class FashionMnistData
{
    private static readonly Lazy<FashionMnistDataset> TrainSplit = new(() => new(null, FashionMnistSplit.Train));
    private static readonly Lazy<FashionMnistDataset> TestSplit = new(() => new(null, FashionMnistSplit.Test));

    public static FashionMnistDataset Train => TrainSplit.Value;
    public static FashionMnistDataset Test => TestSplit.Value;
}

public sealed class FashionMnistTests
{

    [Fact]
    public void Splits_HaveTheDocumentedSizesAndLabels()
    {
        Assert.Equal(60000, FashionMnistData.Train.Count);
        Assert.Equal(10000, FashionMnistData.Test.Count);
        Assert.Equal((28, 28), (FashionMnistData.Train.ImageWidth, FashionMnistData.Train.ImageHeight));
        Assert.Equal(10, FashionMnistData.Train.ClassNames.Count);
        Assert.Equal(9, FashionMnistData.Train.GetLabel(0));
        Assert.Equal("Ankle boot", FashionMnistData.Train.ClassNames[FashionMnistData.Train.GetLabel(0)]);
        Assert.Equal("T-shirt/top", FashionMnistData.Train.ClassNames[0]);

        // Balanced classes: 6000 per class in train, 1000 in test.
        var counts = new int[10];
        for (int i = 0; i < FashionMnistData.Train.Count; i++) counts[FashionMnistData.Train.GetLabel(i)]++;
        Assert.All(counts, c => Assert.Equal(6000, c));
    }

    [Fact]
    public void Pixels_HaveTheKnownMeanIntensity()
    {
        // The widely quoted Fashion-MNIST training mean is 0.2860 (of 1.0).
        long sum = 0;
        for (int i = 0; i < FashionMnistData.Train.Count; i++)
            foreach (byte v in FashionMnistData.Train.GetPixels(i)) sum += v;
        double mean = sum / (255.0 * 784 * FashionMnistData.Train.Count);
        Assert.InRange(mean, 0.2855, 0.2865);

        var sample = FashionMnistData.Train.Get(0);
        Assert.Equal((28, 28), (sample.Width, sample.Height));
        Assert.Equal(9, sample.Label);
        var grey = FashionMnistData.Train.GetPixels(0).ToArray();
        for (int i = 0; i < grey.Length; i++)
        {
            Assert.Equal(grey[i], sample.Image.Pixels[3 * i]);
            Assert.Equal(grey[i], sample.Image.Pixels[3 * i + 2]);
        }
    }

    [Fact]
    public void Subset_SharesDataAndComposes()
    {
        var sub = FashionMnistData.Train.Subset([5, 0, 7]);
        Assert.Equal(3, sub.Count);
        Assert.Equal(FashionMnistData.Train.GetLabel(0), sub.GetLabel(1));
        Assert.True(sub.GetPixels(0).SequenceEqual(FashionMnistData.Train.GetPixels(5)));
        var subsub = sub.Subset([2]);
        Assert.True(subsub.GetPixels(0).SequenceEqual(FashionMnistData.Train.GetPixels(7)));
        Assert.Throws<ArgumentOutOfRangeException>(() => sub.Get(3));
    }

    [Fact]
    public void PlainAndMalformedIdxFiles()
    {
        using var dir = new TempDirectory();
        // Un-gzipped files with the plain names: two 2x3 images.
        byte[] images = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        File.WriteAllBytes(dir.Combine("t10k-images-idx3-ubyte"), images);
        File.WriteAllBytes(dir.Combine("t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 3, 8]);
        var ds = new FashionMnistDataset(dir.Path, FashionMnistSplit.Test);
        Assert.Equal(2, ds.Count);
        Assert.Equal((3, 2), (ds.ImageWidth, ds.ImageHeight));
        Assert.Equal(new byte[] { 7, 8, 9, 10, 11, 12 }, ds.GetPixels(1).ToArray());
        Assert.Equal(8, ds.GetLabel(1));

        // Wrong magic (a labels file where images are expected), gzipped this time.
        using (var f = File.Create(dir.Combine("train-images-idx3-ubyte.gz")))
        using (var gz = new GZipStream(f, CompressionLevel.Fastest))
            gz.Write(new byte[] { 0, 0, 8, 1, 0, 0, 0, 1, 0 });
        File.WriteAllBytes(dir.Combine("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 1, 0]);
        var magic = Assert.Throws<DatasetException>(() => new FashionMnistDataset(dir.Path));
        Assert.Equal(DatasetError.InvalidData, magic.Error);
        Assert.Contains("magic", magic.Message);

        // Truncated data.
        File.WriteAllBytes(dir.Combine("t10k-images-idx3-ubyte"), images[..^1]);
        Assert.Contains("ends before", Assert.Throws<DatasetException>(() => new FashionMnistDataset(dir.Path, FashionMnistSplit.Test)).Message);

        Assert.Equal(DatasetError.NotFound,
            Assert.Throws<DatasetException>(() => new FashionMnistDataset(dir.Combine("none"))).Error);
    }

    [Fact]
    public void SegmentationScenes_AreDeterministic_AndMasksMatchTheItems()
    {
        var options = new FashionMnistSegmentationOptions { CanvasSize = 64, Seed = 11, Count = 40 };
        var seg = new FashionMnistSegmentationDataset(FashionMnistData.Train, options);
        Assert.Equal(DatasetKind.Segmentation, seg.Kind);
        Assert.Equal(40, seg.Count);
        Assert.Equal(11, seg.ClassNames.Count);
        Assert.Equal("background", seg.ClassNames[0]);
        Assert.Equal("Ankle boot", seg.ClassNames[10]);

        var itemClasses = new HashSet<int>();
        for (int i = 0; i < seg.Count; i++)
        {
            var s = seg.Get(i);
            Assert.Equal((64, 64), (s.Width, s.Height));
            Assert.NotNull(s.Mask);
            for (int p = 0; p < s.Mask!.Length; p++)
            {
                byte grey = s.Image.Pixels[3 * p];
                Assert.InRange(s.Mask[p], 0, 10);
                // Labelled exactly where the drawn pixel is brighter than the threshold.
                Assert.Equal(grey > options.Threshold, s.Mask[p] != 0);
                if (s.Mask[p] != 0) itemClasses.Add(s.Mask[p]);
            }
        }
        Assert.True(itemClasses.Count >= 8, $"only classes {string.Join(",", itemClasses)} seen");
        // The first item of scene i is source item i, so its class is always present.
        Assert.Contains((byte)(1 + FashionMnistData.Train.GetLabel(3)), seg.Get(3).Mask!);

        var again = new FashionMnistSegmentationDataset(FashionMnistData.Train, options);
        Assert.Equal(seg.Get(17).Mask, again.Get(17).Mask);
        Assert.Equal(seg.Get(17).Image.Pixels, again.Get(17).Image.Pixels);
        var other = new FashionMnistSegmentationDataset(FashionMnistData.Train, options with { Seed = 12 });
        Assert.NotEqual(seg.Get(17).Mask, other.Get(17).Mask);

        // Scaled items still fit and keep valid classes.
        var scaled = new FashionMnistSegmentationDataset(FashionMnistData.Test, options with { MinScale = 0.5, MaxScale = 2.0, CanvasSize = 48 });
        var sc = scaled.Get(0);
        Assert.Equal(48 * 48, sc.Mask!.Length);
        Assert.All(sc.Mask, v => Assert.InRange(v, 0, 10));
    }
}
