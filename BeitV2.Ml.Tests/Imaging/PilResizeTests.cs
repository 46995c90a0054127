using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Tests.Imaging;

/// <summary>
/// Small cases of <see cref="PilResize"/> worked out by hand from Pillow's Resample.c (the
/// bit-exactness on real photos is proven by the PNG fixture test).
/// </summary>
public sealed class PilResizeTests
{
    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.25, 0.8671875)]   // ((1.5·0.25 − 2.5)·0.25² + 1
    [InlineData(-0.75, 0.2265625)]
    [InlineData(1.0, 0.0)]
    [InlineData(1.25, -0.0703125)]  // (((1.25 − 5)·1.25 + 8)·1.25 − 4)·(−0.5)
    [InlineData(1.5, -0.0625)]
    [InlineData(2.0, 0.0)]
    [InlineData(-3.0, 0.0)]
    public void BicubicKernel(double x, double expected) => Assert.Equal(expected, PilResize.Bicubic(x));

    [Fact]
    public void Downscale_StepEdge()
    {
        // 4 → 2: scale 2, support 4. Output 0 (centre 1.0) weighs inputs 0..3 with
        // f(-.25), f(.25), f(.75), f(1.25) = .8671875, .8671875, .2265625, -.0703125 (sum 1.890625):
        // 255·(.2265625 − .0703125)/1.890625 = 21.07 → 21; output 1 by symmetry 233.93 → 234.
        var result = PilResize.Resize([0, 0, 255, 255], 4, 1, 1, 2, 1);
        Assert.Equal(new byte[] { 21, 234 }, result);
    }

    [Fact]
    public void Upscale_StepEdge_OvershootIsClipped()
    {
        // 2 → 4: scale 0.5, support 2. Output 0 (centre .25): f(.25)·0 + f(1.25)·255 < 0 → 0.
        // Output 1 (centre .75): 255·f(.75)/(f(.25)+f(.75)) = 255·.2265625/1.09375 = 52.8 → 53.
        // Output 3 overshoots to 277.5 → 255.
        var result = PilResize.Resize([0, 255], 2, 1, 1, 4, 1);
        Assert.Equal(new byte[] { 0, 53, 202, 255 }, result);
    }

    [Fact]
    public void Vertical_IsTheSameFilterAsHorizontal()
    {
        var result = PilResize.Resize([0, 0, 255, 255], 1, 4, 1, 1, 2);
        Assert.Equal(new byte[] { 21, 234 }, result);
    }

    [Fact]
    public void ChannelsAreFilteredIndependently()
    {
        byte[] rgb = [0, 255, 9, 0, 255, 9, 255, 0, 9, 255, 0, 9];
        Assert.Equal(new byte[] { 21, 234, 9, 234, 21, 9 }, PilResize.Resize(rgb, 4, 1, 3, 2, 1));
    }

    [Theory]
    [InlineData(1, 1, 256, 256)]
    [InlineData(451, 300, 384, 256)]
    [InlineData(7, 5, 3, 11)]
    public void ConstantImage_StaysConstant(int w, int h, int ow, int oh)
    {
        var src = Enumerable.Repeat((byte)173, w * h * 3).ToArray();
        Assert.All(PilResize.Resize(src, w, h, 3, ow, oh), v => Assert.Equal(173, v));
    }

    [Fact]
    public void SameSize_IsACopy()
    {
        var src = RandomBytes(5 * 4 * 3, 7);
        var result = PilResize.Resize(src, 5, 4, 3, 5, 4);
        Assert.Equal(src, result);
        Assert.NotSame(src, result);
    }

    [Theory]
    [InlineData(37, 23, 16, 40)]   // down horizontally, up vertically
    [InlineData(13, 50, 50, 13)]   // up, down
    [InlineData(30, 20, 30, 9)]    // vertical pass only
    [InlineData(30, 20, 61, 20)]   // horizontal pass only
    public void Region_EqualsTheSameRectangleOfTheFullResize(int w, int h, int ow, int oh)
    {
        var src = RandomBytes(w * h * 3, w * 1000 + h);
        var full = PilResize.Resize(src, w, h, 3, ow, oh);
        var rng = new Random(ow * 1000 + oh);
        for (int trial = 0; trial < 20; trial++)
        {
            int rx = rng.Next(ow), ry = rng.Next(oh);
            int rw = rng.Next(1, ow - rx + 1), rh = rng.Next(1, oh - ry + 1);
            var region = PilResize.ResizeRegion(src, w, h, 3, ow, oh, rx, ry, rw, rh);
            for (int y = 0; y < rh; y++)
                Assert.Equal(full.AsSpan(((ry + y) * ow + rx) * 3, rw * 3).ToArray(), region.AsSpan(y * rw * 3, rw * 3).ToArray());
        }
    }

    [Fact]
    public void InvalidArguments_Throw()
    {
        Assert.Throws<ArgumentException>(() => PilResize.Resize(new byte[5], 2, 1, 3, 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => PilResize.Resize(new byte[6], 2, 1, 3, 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => PilResize.ResizeRegion(new byte[6], 2, 1, 3, 4, 4, 3, 0, 2, 1));
    }

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Theory]
    [InlineData(7, 3000, 5, 40, 0, 0, 5, 40)]        // tall and thin, downscaled (the /segment case)
    [InlineData(9, 400, 224, 224, 0, 0, 224, 224)]   // thin, upscaled horizontally
    [InlineData(31, 900, 40, 120, 3, 17, 30, 71)]    // a region, odd band splits
    public void BandedResize_EqualsTheWholeResize(int width, int height, int outWidth, int outHeight, int x, int y, int w, int h)
    {
        // The band size only changes how much is computed at once, never a pixel: each output row depends on its
        // own coefficients alone. A 1-byte bound forces bands of single output rows.
        var src = RandomBytes(width * height * 3, width + height);
        var whole = PilResize.ResizeRegion(src, width, height, 3, outWidth, outHeight, x, y, w, h, maxIntermediateBytes: long.MaxValue);
        var banded = PilResize.ResizeRegion(src, width, height, 3, outWidth, outHeight, x, y, w, h, maxIntermediateBytes: 1);
        Assert.Equal(whole, banded);
    }
}
