using BeitV2.Ml.Data;

namespace BeitV2.Ml.Tests.Data;

public sealed class ImageFolderDatasetTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ClassFolders_AreSortedOrdinally_AndFilesListedLikeTorchvision()
    {
        DataTestFiles.WriteRgbPng(_dir.Combine("b", "2.png"), 3, 2, 10, 20, 30);
        DataTestFiles.WriteRgbPng(_dir.Combine("b", "10.png"), 3, 2, 11, 20, 30);
        DataTestFiles.WriteRgbPng(_dir.Combine("a", "x.PNG"), 4, 5, 1, 2, 3);
        DataTestFiles.WriteRgbPng(_dir.Combine("a", "sub", "y.png"), 2, 2, 4, 5, 6);   // nested: listed after a/'s own files
        DataTestFiles.WriteRgbPng(_dir.Combine("B", "z.png"), 2, 2, 7, 8, 9);          // 'B' < 'a' < 'b' ordinally
        File.WriteAllText(_dir.Combine("a", "notes.txt"), "not an image");
        DataTestFiles.WriteRgbPng(_dir.Combine("a", "._x.png"), 1, 1, 0, 0, 0);        // macOS junk: skipped
        DataTestFiles.WriteRgbPng(_dir.Combine(".hidden", "h.png"), 1, 1, 0, 0, 0);     // hidden folder: not a class
        DataTestFiles.WriteRgbPng(_dir.Combine("loose.png"), 1, 1, 0, 0, 0);           // ignored beside class folders

        var ds = new ImageFolderDataset(_dir.Path);

        Assert.Equal(DatasetKind.Classification, ds.Kind);
        Assert.Equal(["B", "a", "b"], ds.ClassNames);
        Assert.Equal(5, ds.Count);
        var names = Enumerable.Range(0, ds.Count).Select(i => Path.GetRelativePath(_dir.Path, ds.GetPath(i))).ToArray();
        Assert.Equal(["B/z.png", "a/x.PNG", "a/sub/y.png", "b/10.png", "b/2.png"], names);
        Assert.Equal([0, 1, 1, 2, 2], Enumerable.Range(0, ds.Count).Select(ds.GetLabel));

        var sample = ds.Get(1);
        Assert.Equal((4, 5), (sample.Width, sample.Height));
        Assert.Equal(1, sample.Label);
        Assert.Null(sample.Mask);
        Assert.Equal(new byte[] { 1, 2, 3 }, sample.Image.Pixels[..3]);
    }

    [Fact]
    public void FlatFolder_IsUnlabelled()
    {
        DataTestFiles.WriteRgbPng(_dir.Combine("b.png"), 2, 2, 1, 1, 1);
        DataTestFiles.WriteRgbPng(_dir.Combine("a.png"), 2, 2, 2, 2, 2);
        Directory.CreateDirectory(_dir.Combine("empty"));

        var ds = new ImageFolderDataset(_dir.Path);

        Assert.Equal(DatasetKind.Unlabelled, ds.Kind);
        Assert.Empty(ds.ClassNames);
        Assert.Equal(2, ds.Count);
        Assert.Equal(-1, ds.Get(0).Label);
        Assert.Equal(2, ds.Get(0).Image.Pixels[0]); // a.png first
    }

    [Fact]
    public void EmptyClassFolder_IsAnError_LikeTorchvision()
    {
        DataTestFiles.WriteRgbPng(_dir.Combine("cat", "1.png"), 2, 2, 1, 1, 1);
        Directory.CreateDirectory(_dir.Combine("dog"));
        var ex = Assert.Throws<DatasetException>(() => new ImageFolderDataset(_dir.Path));
        Assert.Equal(DatasetError.InvalidLayout, ex.Error);
        Assert.Contains("dog", ex.Message);
    }

    [Fact]
    public void MissingOrEmptyFolder_IsReported()
    {
        Assert.Equal(DatasetError.NotFound,
            Assert.Throws<DatasetException>(() => new ImageFolderDataset(_dir.Combine("nope"))).Error);
        Assert.Equal(DatasetError.InvalidLayout,
            Assert.Throws<DatasetException>(() => new ImageFolderDataset(_dir.Path)).Error);
    }

    [Fact]
    public void CorruptImage_RaisesDatasetExceptionNamingTheFile()
    {
        DataTestFiles.WriteRgbPng(_dir.Combine("cat", "good.png"), 2, 2, 1, 1, 1);
        File.WriteAllBytes(_dir.Combine("cat", "bad.png"), [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        var ds = new ImageFolderDataset(_dir.Path);
        var ex = Assert.Throws<DatasetException>(() => ds.Get(0));
        Assert.Equal(DatasetError.CorruptImage, ex.Error);
        Assert.Contains("cat/bad.png", ex.Message);
        Assert.NotNull(ex.InnerException);
    }

    [Fact]
    public void SubsetAndSplit_AreDeterministic()
    {
        var (train, val) = DatasetSplit.TrainValidation(100, 0.2, seed: 3);
        Assert.Equal(80, train.Length);
        Assert.Equal(20, val.Length);
        Assert.Equal(Enumerable.Range(0, 100), train.Concat(val).Order());
        Assert.Equal(val, DatasetSplit.TrainValidation(100, 0.2, seed: 3).Validation);
        Assert.NotEqual(val, DatasetSplit.TrainValidation(100, 0.2, seed: 4).Validation);
        Assert.True(val.SequenceEqual(val.Order()));

        // Tiny sets still get one item on each side.
        var (t2, v2) = DatasetSplit.TrainValidation(2, 0.01, seed: 0);
        Assert.Single(t2);
        Assert.Single(v2);

        var take = DatasetSplit.Take(1000, 10, seed: 5);
        Assert.Equal(10, take.Distinct().Count());
        Assert.Equal(take, DatasetSplit.Take(1000, 10, seed: 5));
        Assert.Equal(Enumerable.Range(0, 3), DatasetSplit.Take(3, 10, seed: 5));

        DataTestFiles.WriteRgbPng(_dir.Combine("a", "1.png"), 2, 2, 1, 1, 1);
        DataTestFiles.WriteRgbPng(_dir.Combine("b", "1.png"), 2, 2, 2, 2, 2);
        var subset = new DatasetSubset(new ImageFolderDataset(_dir.Path), [1]);
        Assert.Equal(1, subset.Count);
        Assert.Equal(1, subset.Get(0).Label);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DatasetSubset(subset.Source, [2]));
    }
}
