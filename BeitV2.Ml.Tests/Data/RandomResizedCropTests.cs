using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Tests.Data;

public sealed class RandomResizedCropTests
{
    [Fact]
    public void Boxes_LieInsideTheImage_WithAreaAndRatioInRange()
    {
        var rrc = new RandomResizedCrop(32);
        var random = new Random(1);
        const int width = 640, height = 480, draws = 4000;
        double sumFraction = 0;
        int small = 0, large = 0;
        for (int i = 0; i < draws; i++)
        {
            var box = rrc.GetParams(width, height, random);
            Assert.InRange(box.Left, 0, width - 1);
            Assert.InRange(box.Top, 0, height - 1);
            Assert.InRange(box.Right, box.Left + 1, width);
            Assert.InRange(box.Bottom, box.Top + 1, height);
            // w and h are rounded separately, so area and ratio may stray by about one pixel's worth.
            double fraction = (double)box.Width * box.Height / (width * height);
            Assert.InRange(fraction, 0.08 * 0.98, 1.0);
            double ratio = (double)box.Width / box.Height;
            double tol = 1.0 / Math.Min(box.Width, box.Height) + 1e-9;
            Assert.InRange(ratio, 0.75 * (1 - tol) - tol, 4.0 / 3.0 * (1 + tol) + tol);
            sumFraction += fraction;
            if (fraction < 0.2) small++;
            if (fraction > 0.8) large++;
        }
        // On a 4:3 image a box fits iff s ≤ 0.75·r (s the area fraction, r the ratio), so the accepted
        // s is uniform(0.08, 1) conditioned on that: mean 0.432, P(s < 0.2) = 0.176, P(s > 0.8) = 0.055
        // (numerical integration; the fallback after ten failures has probability 0.26^10).
        // Bounds are about 5 standard errors wide for 4000 draws.
        Assert.InRange(sumFraction / draws, 0.432 - 0.02, 0.432 + 0.02);
        Assert.InRange((double)small / draws, 0.176 - 0.03, 0.176 + 0.03);
        Assert.InRange((double)large / draws, 0.055 - 0.018, 0.055 + 0.018);
    }

    [Fact]
    public void PlacementIsUniform_IncludingBothEdges()
    {
        // scale fixed at 1/4 of a 40x40 image and ratio 1: every box is 20x20, so left is uniform in 0..20.
        var rrc = new RandomResizedCrop(8, 0.25, 0.25, 1.0, 1.0);
        var random = new Random(2);
        var seen = new int[21];
        for (int i = 0; i < 4200; i++)
        {
            var box = rrc.GetParams(40, 40, random);
            Assert.Equal((20, 20), (box.Width, box.Height));
            seen[box.Left]++;
        }
        Assert.All(seen, c => Assert.InRange(c, 120, 290));
    }

    [Theory]
    [InlineData(400, 100, 133, 0, 133, 100)]   // too wide: h = H, w = round(100 · 4/3) = 133, left = (400-133)//2
    [InlineData(100, 400, 0, 133, 100, 133)]   // too tall: w = W, h = round(100 / (3/4)) = 133
    [InlineData(101, 400, 0, 132, 101, 135)]   // h = round(134.67) = 135, top = 265//2 = 132
    public void Fallback_ClampsTheAspectRatio(int width, int height, int left, int top, int w, int h)
    {
        // With scale (1, 1) on an image outside the ratio range no attempt fits (the needed side
        // is at least sqrt(0.75 · W·H) > the short side), so the fallback is used.
        var rrc = new RandomResizedCrop(16, 1.0, 1.0);
        var box = rrc.GetParams(width, height, new Random(3));
        Assert.Equal(new CropBox(left, top, left + w, top + h), box);
        Assert.Equal(rrc.CenterFallback(width, height), box);
    }

    [Fact]
    public void Fallback_KeepsTheWholeImage_WhenItsRatioIsAllowed()
    {
        var rrc = new RandomResizedCrop(16);
        Assert.Equal(new CropBox(0, 0, 120, 100), rrc.CenterFallback(120, 100));
    }

    [Fact]
    public void Apply_IsCropThenPillowBicubicResize()
    {
        var image = DataTestFiles.Noise(50, 40, 4);
        var rrc = new RandomResizedCrop(24);
        var out1 = rrc.Apply(image, new Random(5));
        var box = rrc.GetParams(50, 40, new Random(5));
        var expected = PilResize.Resize(PixelOps.Crop(image, box), 24, 24);
        Assert.Equal((24, 24), (out1.Width, out1.Height));
        Assert.Equal(expected.Pixels, out1.Pixels);
    }

    [Fact]
    public void HorizontalFlip_IsAnExactMirror()
    {
        var image = DataTestFiles.Noise(7, 3, 6);
        var flipped = PixelOps.FlipHorizontal(image);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 7; x++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(image.Pixels[(y * 7 + x) * 3 + c], flipped.Pixels[(y * 7 + 6 - x) * 3 + c]);
        Assert.Equal(image.Pixels, PixelOps.FlipHorizontal(flipped).Pixels);

        byte[] map = [1, 2, 3, 4, 5, 6];
        Assert.Equal(new byte[] { 3, 2, 1, 6, 5, 4 }, PixelOps.FlipHorizontal(map, 3, 2));

        var random = new Random(7);
        Assert.Same(image, new RandomHorizontalFlip(0).Apply(image, random));
        Assert.Equal(flipped.Pixels, new RandomHorizontalFlip(1).Apply(image, random).Pixels);
        var half = new RandomHorizontalFlip(0.5);
        int flips = Enumerable.Range(0, 2000).Count(_ => half.Draw(random));
        Assert.InRange(flips, 900, 1100);
    }
}
