using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Imaging;

/// <summary>Geometry, padding and tensor layout of <see cref="EvalTransform"/> on synthetic images.</summary>
public sealed class EvalTransformTests
{
    [Theory]
    [InlineData(224, 256)]  // crop_pct 0.875
    [InlineData(192, 219)]  // int(219.43)
    [InlineData(384, 384)]  // crop_pct 1.0 from 384 on
    public void ResizeTarget_FollowsTheReferenceCropPct(int inputSize, int resizeTo) =>
        Assert.Equal(resizeTo, new EvalTransform(inputSize).ResizeTo);

    [Theory]
    [InlineData(383, 80)]   // 79.5 → 80 (half to even)
    [InlineData(381, 78)]   // 78.5 → 78
    [InlineData(225, 0)]    // 0.5 → 0
    [InlineData(227, 2)]    // 1.5 → 2
    [InlineData(224, 0)]
    [InlineData(223, 0)]    // pad (0, 1): (224−223)//2 = 0 on the left
    [InlineData(100, -62)]  // pad (62, 62)
    [InlineData(101, -61)]  // pad (61, 62)
    public void CenterCrop_Offset_IsTorchvisions(int length, int offset)
    {
        var box = CropBox.Center(length, 300, 224);
        Assert.Equal(offset, box.Left);
        Assert.Equal(224, box.Width);
    }

    [Fact]
    public void Plan_SkipsTheResizeWhenTheShorterSideMatches()
    {
        var plan = new EvalTransform(224).Plan(300, 256);
        Assert.False(plan.IsResized);
        Assert.Equal((300, 256), (plan.ResizedWidth, plan.ResizedHeight));
        Assert.Equal(new CropBox(38, 16, 262, 240), plan.Crop);
    }

    [Fact]
    public void Plan_PortraitKeepsOrientationAndTruncatesTheLongSide()
    {
        var plan = new EvalTransform(224).Plan(300, 451);   // 256·451/300 = 384.85
        Assert.Equal((256, 384), (plan.ResizedWidth, plan.ResizedHeight));
        Assert.Equal(new CropBox(16, 80, 240, 304), plan.Crop);
    }

    [Fact]
    public void ImageSmallerThanTheCrop_IsZeroPadded()
    {
        // crop_pct 2 makes the resize target (8) smaller than the crop (16): an 8x4 image becomes
        // 16x8, which CenterCrop pads by 4 rows above and below.
        var transform = new EvalTransform(16, cropPct: 2.0);
        var src = RandomImage(8, 4, seed: 3);
        var plan = transform.Plan(8, 4);
        Assert.Equal((16, 8), (plan.ResizedWidth, plan.ResizedHeight));
        Assert.Equal(new CropBox(0, -4, 16, 12), plan.Crop);

        var resized = PilResize.Resize(src, 16, 8);
        var crop = transform.CropU8(src);
        for (int y = 0; y < 16; y++)
        {
            var row = crop.Pixels.AsSpan(y * 16 * 3, 16 * 3).ToArray();
            if (y is < 4 or >= 12) Assert.All(row, v => Assert.Equal(0, v));
            else Assert.Equal(resized.Pixels.AsSpan((y - 4) * 16 * 3, 16 * 3).ToArray(), row);
        }
    }

    [Fact]
    public void ImageSmallerThanTheCrop_WithoutResize_IsCutAndPadded()
    {
        // Shorter side already 8 = target: no resize; width 20 is cropped at round(4/2) = 2,
        // height 8 padded by 4 + 4.
        var transform = new EvalTransform(16, cropPct: 2.0);
        var src = RandomImage(20, 8, seed: 4);
        var crop = transform.CropU8(src);
        for (int y = 0; y < 16; y++)
        {
            var row = crop.Pixels.AsSpan(y * 16 * 3, 16 * 3).ToArray();
            if (y is < 4 or >= 12) Assert.All(row, v => Assert.Equal(0, v));
            else Assert.Equal(src.Pixels.AsSpan(((y - 4) * 20 + 2) * 3, 16 * 3).ToArray(), row);
        }
    }

    [Fact]
    public void OnePixelImage_FillsTheCrop()
    {
        using var image = new Image<Rgb24>(1, 1);
        image[0, 0] = new Rgb24(10, 128, 250);
        var transform = new EvalTransform(224);
        Assert.Equal(new CropBox(16, 16, 240, 240), transform.Plan(1, 1).Crop);

        var crop = transform.CropU8(image);
        for (int i = 0; i < 224 * 224; i++)
            Assert.Equal((10, 128, 250), (crop.Pixels[3 * i], crop.Pixels[3 * i + 1], crop.Pixels[3 * i + 2]));

        using var unit = transform.ToUnitPixelValues(image);
        Assert.Equal(new long[] { 1, 3, 224, 224 }, unit.shape);
        Assert.Equal(250f / 255f, unit[0, 2, 100, 100].item<float>());
    }

    [Fact]
    public void Tensors_AreChwAndFollowTorchvisionArithmetic()
    {
        var transform = new EvalTransform(32, normalization: PixelNormalization.Half);
        var src = RandomImage(50, 40, seed: 5);
        var crop = transform.CropU8(src).Pixels;

        using var normalised = transform.ToPixelValues(src);
        using var unit = transform.ToUnitPixelValues(src);
        var n = normalised.data<float>().ToArray();
        var u = unit.data<float>().ToArray();
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 32 * 32; i++)
            {
                float v = crop[3 * i + c] / 255f;
                Assert.Equal(v, u[c * 32 * 32 + i]);
                Assert.Equal((v - 0.5f) / 0.5f, n[c * 32 * 32 + i]);
            }
        Assert.InRange(u.Min(), 0f, 1f);
        Assert.InRange(u.Max(), 0f, 1f);
    }

    [Fact]
    public void Batch_StacksTheSingleImageResults()
    {
        var transform = new EvalTransform(24);
        var a = RandomImage(40, 30, seed: 6);
        var b = RandomImage(27, 61, seed: 7);
        using var ia = a.ToImage();
        using var ib = b.ToImage();

        foreach (var normalize in new[] { true, false })
        {
            using var batch = transform.ToPixelValuesBatch([ia, ib], normalize);
            Assert.Equal(new long[] { 2, 3, 24, 24 }, batch.shape);
            using var ta = normalize ? transform.ToPixelValues(a) : transform.ToUnitPixelValues(a);
            using var tb = normalize ? transform.ToPixelValues(b) : transform.ToUnitPixelValues(b);
            using var fa = batch[0];
            using var fb = batch[1];
            Assert.Equal(ta.data<float>().ToArray(), fa.data<float>().ToArray());
            Assert.Equal(tb.data<float>().ToArray(), fb.data<float>().ToArray());
        }

        Assert.Throws<ArgumentException>(() => transform.ToPixelValuesBatch(Array.Empty<RgbBuffer>()));
    }

    [Fact]
    public void InvalidConfiguration_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EvalTransform(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new EvalTransform(224, cropPct: 0));
        Assert.Throws<InvalidOperationException>(() => new EvalTransform(224, normalization: PixelNormalization.Half with { StdG = 0 }));
    }

    private static RgbBuffer RandomImage(int width, int height, int seed)
    {
        var pixels = new byte[width * height * 3];
        new Random(seed).NextBytes(pixels);
        return new RgbBuffer(pixels, width, height);
    }
}
