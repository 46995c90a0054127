using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Tests.Data;

public sealed class TwoViewTransformTests
{
    [Fact]
    public void BothViews_ShowTheSameCrop()
    {
        // A smooth image: after resizing the 64 view to 32 it must agree with the 32 view up to
        // resampling differences. Measured once: the same box differs by at most 1 level, the box
        // shifted by 3 pixels by 2 to 8, another draw's box by about 100.
        var image = DataTestFiles.Gradient(300, 200);
        var transform = new TwoViewTransform(64, 32, jitter: ColorJitter.Pretraining);
        var random = new Random(9);
        bool sawFlip = false, sawPlain = false;
        for (int i = 0; i < 12; i++)
        {
            var v = transform.Views(image, random);
            Assert.Equal((64, 64), (v.ModelView.Width, v.ModelView.Height));
            Assert.Equal((32, 32), (v.TokenizerView.Width, v.TokenizerView.Height));
            var down = PilResize.Resize(v.ModelView, 32, 32);
            int maxDiff = 0;
            for (int k = 0; k < down.Pixels.Length; k++)
                maxDiff = Math.Max(maxDiff, Math.Abs(down.Pixels[k] - v.TokenizerView.Pixels[k]));
            Assert.True(maxDiff <= 2, $"views differ by {maxDiff} (box {v.Crop}, flipped {v.Flipped})");
            sawFlip |= v.Flipped;
            sawPlain |= !v.Flipped;
        }
        Assert.True(sawFlip && sawPlain);
    }

    [Fact]
    public void Views_EqualFlippingTheWholeImageFirst_AsTheReferenceDoes()
    {
        var image = DataTestFiles.Noise(45, 30, 10);
        var transform = new TwoViewTransform(16, 8, jitter: null, flipProbability: 1.0);
        var v = transform.Views(image, new Random(11));
        Assert.True(v.Flipped);

        // Reference order: flip the whole image, then crop the box drawn on it, then resize.
        var flippedImage = PixelOps.FlipHorizontal(image);
        var boxOnFlipped = v.Crop with { Left = 45 - v.Crop.Right, Right = 45 - v.Crop.Left };
        Assert.Equal(RandomResizedCrop.ResizedCrop(flippedImage, boxOnFlipped, 16).Pixels, v.ModelView.Pixels);
        Assert.Equal(RandomResizedCrop.ResizedCrop(flippedImage, boxOnFlipped, 8).Pixels, v.TokenizerView.Pixels);
        // And the same box drawn by a plain RandomResizedCrop from the same random stream (flip drawn first).
        var random = new Random(11);
        new RandomHorizontalFlip(1.0).Draw(random);
        Assert.Equal(boxOnFlipped, new RandomResizedCrop(16).GetParams(45, 30, random));
    }

    [Fact]
    public void Apply_NormalisesTheModelViewOnly()
    {
        var image = DataTestFiles.Noise(20, 20, 12);
        var transform = new TwoViewTransform(8, 4);
        var views = transform.Views(image, new Random(13));
        var prepared = transform.Apply(new ImageSample(image, -1), new Random(13));
        Assert.Equal(3 * 64, prepared.Pixels.Length);
        Assert.Equal(3 * 16, prepared.SecondPixels!.Length);
        Assert.Equal(PixelOps.ToChw(views.TokenizerView, null), prepared.SecondPixels);
        Assert.Equal(new EvalTransform(8, 1.0).ToChw(views.ModelView), prepared.Pixels);
        Assert.All(prepared.SecondPixels, v => Assert.InRange(v, 0f, 1f));
    }
}
