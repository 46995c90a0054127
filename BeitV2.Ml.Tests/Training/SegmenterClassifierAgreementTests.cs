using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Tests.Data;
using BeitV2.Ml.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

public sealed class SegmenterClassifierAgreementTests
{
    private const int Classes = 10, SegmenterClasses = 11;

    [Fact]
    public void Read_VotesOverTheItemsPixelsOnly_BackgroundAside_TiesToTheLowestClass()
    {
        // 4x3 maps: the item covers 8 pixels (two of them ignored), the canvas around it 4.
        long[] item =
        [
            0, 5, 5, 0,
            5, 5, 255, 5,
            5, 255, 5, 5,
        ];
        long[] predicted =
        [
            7, 3, 3, 7, // the canvas pixels' 7s do not count
            0, 9, 1, 0,
            3, 3, 9, 9,
        ];
        var r = SegmenterClassifierAgreement.Read(item, predicted, SegmenterClasses);
        // Item pixels (mask non-zero, not 255): (1,0)=3 (2,0)=3 (0,1)=0 (1,1)=9 (3,1)=0 (0,2)=3 (2,2)=9 (3,2)=9 → 3:3 votes, 9:3 votes, 0:2.
        Assert.Equal(8, r.ItemPixels);
        Assert.Equal(2, r.BackgroundPixels);
        Assert.Equal(2, r.MajorityClass); // segmenter classes 3 and 9 tie; the lower, 3, is item class 2
        Assert.False(r.MostlyBackground);

        long[] plainItem = [0, 4, 4, 4, 4, 0];
        var clear = SegmenterClassifierAgreement.Read(plainItem, [0, 8, 8, 8, 0, 0], SegmenterClasses);
        Assert.Equal((7, 4, 1, false), (clear.MajorityClass, clear.ItemPixels, clear.BackgroundPixels, clear.MostlyBackground));
        var mostlyBackground = SegmenterClassifierAgreement.Read(plainItem, [8, 0, 0, 0, 6, 8], SegmenterClasses);
        Assert.True(mostlyBackground.MostlyBackground); // 3 of 4 called background: still a majority class among the rest
        Assert.Equal(5, mostlyBackground.MajorityClass);
        var half = SegmenterClassifierAgreement.Read(plainItem, [0, 0, 0, 6, 6, 0], SegmenterClasses);
        Assert.False(half.MostlyBackground); // exactly half is not "mostly"
        var allBackground = SegmenterClassifierAgreement.Read(plainItem, [1, 0, 0, 0, 0, 1], SegmenterClasses);
        Assert.Null(allBackground.MajorityClass);
        Assert.True(allBackground.MostlyBackground);
        Assert.Equal((4, 4), (allBackground.ItemPixels, allBackground.BackgroundPixels));
    }

    [Fact]
    public void Read_RefusesMapsOfDifferentSizes_AndClassesTheSegmenterLacks()
    {
        Assert.Throws<ArgumentException>(() => SegmenterClassifierAgreement.Read([1, 1], [1], SegmenterClasses));
        Assert.Contains("11 classes", Assert.Throws<ArgumentException>(() => SegmenterClassifierAgreement.Read([1, 1], [1, 11], SegmenterClasses)).Message);
        Assert.Throws<ArgumentException>(() => SegmenterClassifierAgreement.Read([1], [-1], SegmenterClasses));
    }

    [Fact]
    public void Add_CountsRightAgreeingAndBackgroundItems()
    {
        var counts = new SegmenterClassifierAgreement(Classes);
        Assert.True(double.IsNaN(counts.Agreement));
        SegmenterClassifierAgreement.ItemReading Says(int? cls, int background = 0) => new(cls, 10, background);
        counts.Add(label: 1, classifierPrediction: 1, Says(1));        // both right, agree
        counts.Add(label: 2, classifierPrediction: 4, Says(4));        // both wrong, agree
        counts.Add(label: 3, classifierPrediction: 3, Says(5));        // classifier right, segmenter wrong
        counts.Add(label: 6, classifierPrediction: 0, Says(6, 4));     // segmenter right, classifier wrong
        counts.Add(label: 7, classifierPrediction: 7, Says(null, 10)); // item all background
        counts.Add(label: 8, classifierPrediction: 8, Says(8, 6));     // right, but most pixels background

        Assert.Equal(6, counts.Items);
        Assert.Equal((4, 3, 3, 2), (counts.ClassifierRight, counts.SegmenterRight, counts.Agreements, counts.MostlyBackground));
        Assert.Equal(4 / 6.0, counts.ClassifierAccuracy, 12);
        Assert.Equal(3 / 6.0, counts.SegmenterAccuracy, 12);
        Assert.Equal(3 / 6.0, counts.Agreement, 12);
        Assert.Equal(2 / 6.0, counts.BackgroundShare, 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => counts.Add(10, 0, Says(0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => counts.Add(0, -1, Says(0)));
    }

    [Fact]
    public void IsolatedItems_AreTheItemUnscaledAtTheCentreOfTheSceneCanvas_WithTheSceneSetsMask()
    {
        var source = FashionMnistData.Test.Subset([0, 1, 2]);
        var options = new FashionMnistSegmentationOptions(); // the scene set's canvas (64) and threshold (32)
        var items = new FashionMnistIsolatedItems(source, options);
        Assert.Equal(3, items.Count);
        Assert.Equal(DatasetKind.Segmentation, items.Kind);
        Assert.Equal(["background", .. FashionMnistDataset.Classes], items.ClassNames);
        for (int i = 0; i < items.Count; i++)
        {
            var sample = items.Get(i);
            var pixels = source.GetPixels(i);
            Assert.Equal(source.GetLabel(i), sample.Label);
            Assert.Equal((64, 64), (sample.Width, sample.Height));
            for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++)
            {
                int ix = x - 18, iy = y - 18; // (64 − 28) / 2
                bool inside = ix is >= 0 and < 28 && iy is >= 0 and < 28;
                byte v = inside ? pixels[iy * 28 + ix] : (byte)0;
                Assert.Equal(v, sample.Image.Pixels[3 * (y * 64 + x)]);
                Assert.Equal(v > 32 ? 1 + source.GetLabel(i) : 0, sample.Mask![y * 64 + x]);
            }
        }
        Assert.Throws<ArgumentException>(() => new FashionMnistIsolatedItems(source, options with { CanvasSize = 27 }));
    }

    [Fact]
    public void Evaluate_CountsEachItemOnce_WithModelsWhoseAnswersAreFixed()
    {
        using var scope = NewDisposeScope();
        var items = FashionMnistData.Test.Subset([.. Enumerable.Range(0, 50)]);
        var labels = Enumerable.Range(0, 50).Select(items.GetLabel).ToArray();
        var threes = labels.Count(l => l == 3);
        Assert.InRange(threes, 1, 49); // the check below needs both kinds of item

        // A classifier that always says 3 (item class), and segmenters that say one class everywhere: conv_seg's weights
        // zeroed, its bias picking the class.
        Tensor AlwaysThree(Tensor images) => nn.functional.one_hot(full(new[] { images.shape[0] }, 3, dtype: ScalarType.Int64), Classes).to(ScalarType.Float32);
        var classifierTransform = new ClassificationEvalTransform(new EvalTransform(28, 1.0), fullResize: true);
        using var segmenter = new BeitSegmenter(SegmentationConfig.Micro(numClasses: SegmenterClasses));
        segmenter.eval();
        void SayEverywhere(int segmenterClass)
        {
            using var _ = no_grad();
            var parameters = segmenter.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            parameters["decode_head.conv_seg.weight"].zero_();
            parameters["decode_head.conv_seg.bias"].zero_();
            parameters["decode_head.conv_seg.bias"][segmenterClass] = tensor(100f);
        }
        SegmenterClassifierAgreement Run() => SegmenterClassifierAgreementEvaluation.Evaluate(AlwaysThree, Classes, classifierTransform,
            segmenter, new SegmentationEvalTransform(64), items, null, CPU, CancellationToken.None, batchSize: 16, workers: 1);

        SayEverywhere(1 + 3);
        var agreeing = Run();
        Assert.Equal(50, agreeing.Items);
        Assert.Equal(threes, agreeing.ClassifierRight);
        Assert.Equal(threes, agreeing.SegmenterRight);
        Assert.Equal(50, agreeing.Agreements);
        Assert.Equal(0, agreeing.MostlyBackground);

        SayEverywhere(0);
        var blind = Run();
        Assert.Equal((50L, (long)threes, 0L, 0L, 50L),
            (blind.Items, blind.ClassifierRight, blind.SegmenterRight, blind.Agreements, blind.MostlyBackground));

        SayEverywhere(1 + 5);
        var other = Run();
        Assert.Equal(labels.Count(l => l == 5), other.SegmenterRight);
        Assert.Equal(0, other.Agreements);

        Assert.Throws<ArgumentException>(() => SegmenterClassifierAgreementEvaluation.Evaluate(AlwaysThree, 9, classifierTransform,
            segmenter, new SegmentationEvalTransform(64), items, null, CPU, CancellationToken.None));
    }
}
