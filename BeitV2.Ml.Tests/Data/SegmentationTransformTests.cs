using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Tests.Data;

public sealed class SegmentationTransformTests
{
    // Vertical stripes: class = x / 8 (0..7), colour = 30 · class in every channel.
    private static ImageSample Stripes(int width, int height)
    {
        var px = new byte[width * height * 3];
        var mask = new byte[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int cls = x / 8 % 8;
                mask[y * width + x] = (byte)cls;
                px[(y * width + x) * 3] = px[(y * width + x) * 3 + 1] = px[(y * width + x) * 3 + 2] = (byte)(30 * cls);
            }
        return new ImageSample(new RgbBuffer(px, width, height), -1, mask);
    }

    [Theory]
    [InlineData(500, 375, 2048, 512, 683, 512)]   // ADE-like photo: short side limits
    [InlineData(2000, 500, 2048, 512, 2048, 512)]
    [InlineData(100, 50, 128, 32, 64, 32)]
    public void RescaleSize_IsMmcvs(int w, int h, int scaleLong, int scaleShort, int ew, int eh) =>
        Assert.Equal((ew, eh), SegmentationTrainTransform.RescaleSize(w, h, scaleLong, scaleShort));

    [Fact]
    public void ImageAndMask_GetIdenticalGeometry_WhenNoResamplingHappens()
    {
        // A 64x16 image with scale (64, 16) and ratio 1 keeps its size: crop and flip are then exact
        // copies, and every pixel's colour must still encode its mask class.
        var sample = Stripes(64, 16);
        var transform = new SegmentationTrainTransform(16, minRatio: 1, maxRatio: 1, scaleLong: 64, scaleShort: 16);
        var random = new Random(14);
        bool flipped = false;
        for (int i = 0; i < 10; i++)
        {
            var crop = transform.Augment(sample, random);
            Assert.Equal((64, 16), (crop.ResizedWidth, crop.ResizedHeight));
            Assert.Equal((16, 16), (crop.Image.Width, crop.Image.Height));
            for (int p = 0; p < crop.Mask.Length; p++)
                Assert.Equal(30 * crop.Mask[p], crop.Image.Pixels[3 * p]);
            flipped |= crop.Flipped;
            // Flipped stripes run right to left: the class decreases along x.
            int first = crop.Mask[0], last = crop.Mask[15];
            Assert.True(crop.Flipped ? first >= last : first <= last);
        }
        Assert.True(flipped);
    }

    [Fact]
    public void RandomScales_KeepMaskValuesAndAlignment_AndPadWithIgnore()
    {
        var sample = Stripes(40, 24);
        var transform = new SegmentationTrainTransform(32);
        var random = new Random(15);
        for (int i = 0; i < 10; i++)
        {
            var crop = transform.Augment(sample, random);
            Assert.InRange(crop.Image.Width, 1, 32);
            Assert.All(crop.Mask, v => Assert.InRange(v, 0, 7));
            // Away from stripe edges the resampled colour still matches the nearest-resized class.
            int agree = 0;
            for (int p = 0; p < crop.Mask.Length; p++)
                if (Math.Abs(crop.Image.Pixels[3 * p] - 30 * crop.Mask[p]) <= 16) agree++;
            Assert.True(agree >= crop.Mask.Length * 0.7, $"only {agree} of {crop.Mask.Length} pixels agree");

            var prepared = transform.Apply(sample, new Random(100 + i));
            Assert.Equal(3 * 32 * 32, prepared.Pixels.Length);
            Assert.Equal(32 * 32, prepared.Mask!.Length);
        }

        // Ratio 0.5 of scale (128, 32) is (64, 16): factor min(64/40, 16/24) → 27x16, below the crop
        // size, so the whole image is kept and padded at the bottom and right (mask 255, pixels 0
        // after normalisation).
        var small = new SegmentationTrainTransform(32, minRatio: 0.5, maxRatio: 0.5, scaleLong: 128, scaleShort: 32);
        var c2 = small.Augment(Stripes(40, 24), new Random(16));
        Assert.Equal((27, 16), (c2.ResizedWidth, c2.ResizedHeight));
        Assert.Equal(new CropBox(0, 0, 27, 16), c2.Crop);
        var p2 = small.Apply(Stripes(40, 24), new Random(16));
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                bool inside = x < 27 && y < 16;
                Assert.Equal(inside ? c2.Mask[y * 27 + x] : ImageSample.IgnoreIndex, p2.Mask![y * 32 + x]);
                if (!inside) Assert.Equal(0f, p2.Pixels[2 * 1024 + y * 32 + x]);
            }
    }

    [Fact]
    public void EvalTransform_ResizesImageBicubicAndMaskNearest()
    {
        var sample = Stripes(40, 24);
        var t = new SegmentationEvalTransform(20);
        var prepared = t.Apply(sample, new Random(0));
        Assert.Equal(3 * 400, prepared.Pixels.Length);
        Assert.Equal(PixelOps.ToChw(PilResize.Resize(sample.Image, 20, 20), PixelNormalization.ImageNet), prepared.Pixels);
        // 40 → 20 columns: nearest reads column 2x, whose class is 2x / 8.
        for (int x = 0; x < 20; x++) Assert.Equal(2 * x / 8, prepared.Mask![5 * 20 + x]);
    }
}
