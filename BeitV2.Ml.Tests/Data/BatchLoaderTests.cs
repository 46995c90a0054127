using BeitV2.Ml.Data;
using BeitV2.Ml.Masking;
using TorchSharp;

namespace BeitV2.Ml.Tests.Data;

public sealed class BatchLoaderTests
{
    private static FashionMnistDataset Small() => FashionMnistData.Test.Subset(Enumerable.Range(0, 20).ToArray());

    private static byte[] Bytes(torch.Tensor t) => t.bytes.ToArray();

    [Fact]
    public void Batches_HaveTheDocumentedShapesAndTypes()
    {
        var loader = new BatchLoader(Small(), ClassificationTrainTransform.FineTuning(32),
            new BatchLoaderOptions { BatchSize = 8, Seed = 1, Workers = 2 });
        Assert.Equal(3, loader.BatchesPerEpoch);
        var sizes = new List<int>();
        var seen = new List<int>();
        foreach (var batch in loader.Epoch(0))
            using (batch)
            {
                Assert.Equal(new long[] { batch.Count, 3, 32, 32 }, batch.Images.shape);
                Assert.Equal(torch.ScalarType.Float32, batch.Images.dtype);
                Assert.Equal(new long[] { batch.Count }, batch.Labels.shape);
                Assert.Equal(torch.ScalarType.Int64, batch.Labels.dtype);
                Assert.Null(batch.Masks);
                Assert.Null(batch.TokenizerImages);
                Assert.Null(batch.MaskedPositions);
                var labels = batch.Labels.data<long>().ToArray();
                for (int i = 0; i < batch.Count; i++) Assert.Equal(FashionMnistData.Test.GetLabel(batch.Indices[i]), labels[i]);
                sizes.Add(batch.Count);
                seen.AddRange(batch.Indices);
            }
        Assert.Equal([8, 8, 4], sizes);
        Assert.Equal(Enumerable.Range(0, 20), seen.Order());
        Assert.NotEqual(Enumerable.Range(0, 20), seen); // shuffled

        var dropLast = new BatchLoader(Small(), ClassificationTrainTransform.FineTuning(32),
            new BatchLoaderOptions { BatchSize = 8, DropLast = true });
        Assert.Equal(2, dropLast.BatchesPerEpoch);
    }

    [Fact]
    public void SameSeedAndEpoch_GiveIdenticalBytes_WhateverTheThreading()
    {
        var transform = TwoViewTransform.Pretraining(16, 8);
        BlockMaskingGenerator Masking(Random r) => new(4, numMaskingPatches: 6, minNumPatches: 2, random: r);
        var a = new BatchLoader(Small(), transform, new BatchLoaderOptions { BatchSize = 6, Seed = 42, Workers = 1, Prefetch = false, Masking = Masking });
        var b = new BatchLoader(Small(), transform, new BatchLoaderOptions { BatchSize = 6, Seed = 42, Workers = 4, Prefetch = true, Masking = Masking });

        var fromA = a.Epoch(3).Select(Flatten).ToList();
        var fromB = b.Epoch(3).Select(Flatten).ToList();
        Assert.Equal(4, fromA.Count);
        for (int i = 0; i < fromA.Count; i++) Assert.Equal(fromA[i], fromB[i]);

        using (var single = b.LoadBatch(3, 2)) Assert.Equal(fromA[2], FlattenKeep(single));

        var otherEpoch = a.Epoch(4).Select(Flatten).ToList();
        Assert.NotEqual(fromA[0], otherEpoch[0]);

        using var first = a.LoadBatch(3, 0);
        Assert.Equal(new long[] { 6, 3, 16, 16 }, first.Images.shape);
        Assert.Equal(new long[] { 6, 3, 8, 8 }, first.TokenizerImages!.shape);
        Assert.Equal(new long[] { 6, 16 }, first.MaskedPositions!.shape);
        Assert.Equal(torch.ScalarType.Bool, first.MaskedPositions.dtype);
        using var perRow = first.MaskedPositions.sum(dim: 1);
        Assert.All(perRow.data<long>().ToArray(), n => Assert.Equal(6, n));
        using var min = first.TokenizerImages.min();
        using var max = first.TokenizerImages.max();
        Assert.InRange(min.item<float>(), 0f, 1f);
        Assert.InRange(max.item<float>(), 0f, 1f);

        static string Flatten(TrainingBatch batch)
        {
            using (batch) return FlattenKeep(batch);
        }

        static string FlattenKeep(TrainingBatch batch) =>
            string.Join("|", Convert.ToHexString(Bytes(batch.Images)), Convert.ToHexString(Bytes(batch.TokenizerImages!)),
                Convert.ToHexString(Bytes(batch.MaskedPositions!)), string.Join(",", batch.Indices));
    }

    [Fact]
    public void SegmentationBatches_CarryInt64Masks()
    {
        var seg = new FashionMnistSegmentationDataset(FashionMnistData.Test,
            new FashionMnistSegmentationOptions { CanvasSize = 48, Count = 6, Seed = 2 });
        var loader = new BatchLoader(seg, new SegmentationTrainTransform(32),
            new BatchLoaderOptions { BatchSize = 3, Seed = 5, Shuffle = false });
        using var batch = loader.LoadBatch(0, 1);
        Assert.Equal(new[] { 3, 4, 5 }, batch.Indices);
        Assert.Equal(new long[] { 3, 32, 32 }, batch.Masks!.shape);
        Assert.Equal(torch.ScalarType.Int64, batch.Masks.dtype);
        Assert.All(batch.Masks.data<long>().ToArray(), v => Assert.True(v is >= 0 and <= 10 or 255, $"mask value {v}"));
        Assert.All(batch.Labels.data<long>().ToArray(), v => Assert.Equal(-1, v));

        var eval = new BatchLoader(seg, new SegmentationEvalTransform(24), new BatchLoaderOptions { BatchSize = 6, Shuffle = false });
        using var all = eval.LoadBatch(0, 0);
        Assert.Equal(new long[] { 6, 24, 24 }, all.Masks!.shape);
    }

    /// <summary>
    /// EpochSize n: epoch e serves the window [e·n, (e+1)·n) of the dataset (modulo its size), shuffled; successive
    /// epochs see disjoint items, and a batch loaded alone (as a resumed run loads the rest of an epoch) is the same.
    /// </summary>
    [Fact]
    public void EpochSize_ServesTheNextWindowEachEpoch_AndABatchAloneIsTheSame()
    {
        var scenes = new FashionMnistSegmentationDataset(FashionMnistData.Test, new FashionMnistSegmentationOptions { Count = 20, Seed = 3 });
        var options = new BatchLoaderOptions { BatchSize = 4, Seed = 7, DropLast = true, Workers = 2, EpochSize = 8 };
        var loader = new BatchLoader(scenes, new SegmentationTrainTransform(32), options);
        Assert.Equal(8, loader.EpochLength);
        Assert.Equal(2, loader.BatchesPerEpoch);

        int[] Seen(int epoch)
        {
            var seen = new List<int>();
            foreach (var batch in loader.Epoch(epoch)) using (batch) seen.AddRange(batch.Indices);
            return seen.ToArray();
        }
        var e0 = Seen(0);
        var e1 = Seen(1);
        Assert.Equal(Enumerable.Range(0, 8), e0.Order());
        Assert.Equal(Enumerable.Range(8, 8), e1.Order());
        Assert.Empty(e0.Intersect(e1));
        Assert.NotEqual(Enumerable.Range(8, 8), e1); // still shuffled within the epoch
        Assert.Equal(new[] { 0, 1, 2, 3, 16, 17, 18, 19 }, loader.EpochOrder(2).Order()); // 16..19, then wraps to 0..3
        Assert.Equal(Enumerable.Range(4, 8), loader.EpochOrder(3).Order());

        // Resumption: the second batch of epoch 1 alone, and through the trainer's data after skipping one batch.
        string Bytes2(TrainingBatch b) => Convert.ToHexString(Bytes(b.Images)) + Convert.ToHexString(Bytes(b.Masks!)) + string.Join(",", b.Indices);
        var full = loader.Epoch(1).Select(b => { using (b) return Bytes2(b); }).ToList();
        using (var alone = loader.LoadBatch(1, 1)) Assert.Equal(full[1], Bytes2(alone));
        var resumed = new BeitV2.Ml.Training.BatchLoaderTrainingData(loader).GetBatches(1, skip: 1).ToList();
        using (var batch = Assert.Single(resumed))
        {
            var want = loader.LoadBatch(1, 1);
            using (want) Assert.True(batch.Images.Equals(want.Images) && batch.Masks!.Equals(want.Masks!));
        }

        // A window as large as the set (or larger) is the whole set in the order of a loader without one.
        var plain = new BatchLoader(scenes, new SegmentationTrainTransform(32), options with { EpochSize = null });
        var whole = new BatchLoader(scenes, new SegmentationTrainTransform(32), options with { EpochSize = 50 });
        Assert.Equal(20, whole.EpochLength);
        Assert.Equal(plain.EpochOrder(3), whole.EpochOrder(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchLoader(scenes, new SegmentationTrainTransform(32), options with { EpochSize = 0 }));
    }

    [Fact]
    public void FailingSamples_SurfaceTheirOwnException()
    {
        using var dir = new TempDirectory();
        DataTestFiles.WriteRgbPng(dir.Combine("a", "ok.png"), 4, 4, 1, 2, 3);
        File.WriteAllBytes(dir.Combine("a", "broken.png"), [1, 2, 3]);
        var loader = new BatchLoader(new ImageFolderDataset(dir.Path), ClassificationTrainTransform.Tokenizer(8),
            new BatchLoaderOptions { BatchSize = 2 });
        Assert.Equal(DatasetError.CorruptImage,
            Assert.Throws<DatasetException>(() => loader.Epoch(0).First().Dispose()).Error);
    }
}
