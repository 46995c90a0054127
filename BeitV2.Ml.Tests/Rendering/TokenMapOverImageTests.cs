using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Rendering;

/// <summary>The token map drawn over the whole photo at a chosen size (tokens?format=png).</summary>
public sealed class TokenMapOverImageTests
{
    private static readonly Rgb24 Grey = new(128, 128, 128);

    [Theory]
    [InlineData(640, 427, 512, 512, 342)]
    [InlineData(427, 640, 512, 342, 512)]
    [InlineData(28, 28, 512, 512, 512)]
    [InlineData(640, 427, 64, 64, 43)]
    public void KeepsThePhotosAspect_WithTheLongerSideAsAsked(int w, int h, int side, int outW, int outH)
    {
        using var photo = new Image<Rgb24>(w, h, Grey);
        var plan = new EvalTransform(inputSize: 28, cropPct: 0.875).Plan(w, h);
        using var image = TokenMapRenderer.RenderOverImage(photo, plan, new int[7, 7], 64, side);
        Assert.Equal((outW, outH), (image.Width, image.Height));
    }

    [Fact]
    public void TintsTheView_DarkensTheRest_AndDrawsGridLinesBetweenCells()
    {
        using var photo = new Image<Rgb24>(640, 427, Grey);
        var plan = new EvalTransform(inputSize: 28, cropPct: 0.875).Plan(640, 427);
        var tokens = new int[7, 7];
        tokens[3, 3] = 5;
        using var image = TokenMapRenderer.RenderOverImage(photo, plan, tokens, 64, 512);

        var colour = TokenMapRenderer.TokenColor(5);
        var centre = image[image.Width / 2, image.Height / 2];   // inside cell (3, 3)
        Assert.Equal(Blend(Grey.R, colour.R, 0.45), centre.R);
        Assert.Equal(Blend(Grey.G, colour.G, 0.45), centre.G);
        Assert.Equal(new Rgb24(58, 58, 58), image[2, image.Height / 2]);   // left of the view: darkened, untinted
        var whiteAcross = Enumerable.Range(0, image.Width).Count(x => image[x, image.Height / 2] == new Rgb24(255, 255, 255));
        Assert.Equal(6, whiteAcross);
    }

    [Theory]
    [InlineData(63)]
    [InlineData(2049)]
    public void ASizeOutsideTheRange_IsRefused(int side)
    {
        using var photo = new Image<Rgb24>(40, 30, Grey);
        var plan = new EvalTransform(inputSize: 28).Plan(40, 30);
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenMapRenderer.RenderOverImage(photo, plan, new int[7, 7], 64, side));
    }

    private static byte Blend(byte photo, byte colour, double alpha) =>
        (byte)Math.Round((1 - alpha) * photo + alpha * colour, MidpointRounding.AwayFromZero);
}
