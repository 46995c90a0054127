using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Ml.Tests.Rendering;

public sealed class TokenMapRendererTests
{
    private const int View = 224, Grid = 14, Patch = 16, Codebook = 8192;
    private static readonly Rgb24 White = new(255, 255, 255);

    private static RgbBuffer FlatGrey(int width, int height, byte level = 128) =>
        new(Enumerable.Repeat(level, width * height * 3).ToArray(), width, height);

    private static int[,] Tokens(Func<int, int, int> token)
    {
        var grid = new int[Grid, Grid];
        for (int r = 0; r < Grid; r++)
        for (int c = 0; c < Grid; c++)
            grid[r, c] = token(r, c);
        return grid;
    }

    // Centre of patch (r, c) in the output, away from the grid lines.
    private static Rgb24 PatchCentre(Image<Rgb24> image, int r, int c, int scale) =>
        image[(c * Patch + Patch / 2) * scale, (r * Patch + Patch / 2) * scale];

    private static byte Blend(byte photo, byte colour, double alpha) =>
        (byte)Math.Round((1 - alpha) * photo + alpha * colour, MidpointRounding.AwayFromZero);

    [Fact]
    public void Png_HasCropSizeTimesScale()
    {
        var png = TokenMapRenderer.RenderPng(FlatGrey(View, View), Tokens((r, c) => r * Grid + c), Codebook);

        PngAssert.Header(png, 2 * View, 2 * View, bitDepth: 8, colorType: 2);
        using var decoded = Image.Load<Rgb24>(png);
        Assert.Equal((448, 448), (decoded.Width, decoded.Height));

        var scale3 = TokenMapRenderer.RenderPng(FlatGrey(View, View), Tokens((_, _) => 0), Codebook,
            new TokenMapRenderOptions { Scale = 3 });
        PngAssert.Header(scale3, 3 * View, 3 * View, bitDepth: 8, colorType: 2);
    }

    [Fact]
    public void EqualTokensShareATint_DifferentTokensDiffer()
    {
        // Token 7 everywhere except a checkerboard of 8 and 9 in the top-left 4x4 patches.
        var tokens = Tokens((r, c) => r < 4 && c < 4 ? ((r + c) % 2 == 0 ? 8 : 9) : 7);
        using var image = TokenMapRenderer.Render(FlatGrey(View, View), tokens, Codebook);

        var seven = PatchCentre(image, 10, 10, 2);
        var eight = PatchCentre(image, 0, 0, 2);
        var nine = PatchCentre(image, 0, 1, 2);
        for (int r = 0; r < Grid; r++)
        for (int c = 0; c < Grid; c++)
            Assert.Equal(tokens[r, c] switch { 7 => seven, 8 => eight, _ => nine }, PatchCentre(image, r, c, 2));
        Assert.NotEqual(seven, eight);
        Assert.NotEqual(seven, nine);
        Assert.NotEqual(eight, nine);

        // The tint is 45 % of the token colour over the grey photo.
        var colour = TokenMapRenderer.TokenColor(7);
        Assert.Equal(new Rgb24(Blend(128, colour.R, 0.45), Blend(128, colour.G, 0.45), Blend(128, colour.B, 0.45)), seven);
        // Every pixel of a patch (away from its lines) has the patch's tint.
        for (int y = 2 * 10 * Patch + 1; y < 2 * 11 * Patch; y++)
        for (int x = 2 * 10 * Patch + 1; x < 2 * 11 * Patch; x++)
            Assert.Equal(seven, image[x, y]);
    }

    [Fact]
    public void TokenColor_IsStableAndSpread()
    {
        Assert.Equal(TokenMapRenderer.TokenColor(1234), TokenMapRenderer.TokenColor(1234));
        var colours = Enumerable.Range(0, 64).Select(TokenMapRenderer.TokenColor).ToList();
        Assert.Equal(64, colours.Distinct().Count());
    }

    [Fact]
    public void GridLines_OnPatchBoundariesOnlyWhenEnabled()
    {
        var tokens = Tokens((r, c) => (r * 31 + c * 17) % 100);
        using var withLines = TokenMapRenderer.Render(FlatGrey(View, View), tokens, Codebook);
        using var without = TokenMapRenderer.Render(FlatGrey(View, View), tokens, Codebook,
            new TokenMapRenderOptions { GridLines = false });

        // Boundary between patch columns 0 and 1 is output column 32; between rows 2 and 3 output row 96.
        Assert.Equal(White, withLines[32, 5]);
        Assert.Equal(White, withLines[5, 96]);
        Assert.Equal(White, withLines[32, 96]);
        Assert.Equal(PatchCentre(withLines, 0, 1, 2), withLines[33, 5]);   // lines are 1 pixel wide
        Assert.Equal(PatchCentre(withLines, 3, 0, 2), withLines[5, 97]);
        Assert.Equal(PatchCentre(withLines, 0, 0, 2), withLines[0, 0]);    // no outer frame
        Assert.Equal(PatchCentre(withLines, 13, 13, 2), withLines[447, 447]);

        Assert.Equal(PatchCentre(without, 0, 1, 2), without[32, 5]);
        Assert.Equal(PatchCentre(without, 3, 0, 2), without[5, 96]);
        // 13 vertical and 13 horizontal lines
        int whiteInRow5 = Enumerable.Range(0, 448).Count(x => withLines[x, 5].Equals(White));
        Assert.Equal(13, whiteInRow5);
    }

    [Fact]
    public void RenderFromOriginalAndPlan_UsesTheModelsView()
    {
        // A small transform keeps this cheap: 32 px input, shorter side resized to 36, 4x4 patches of 8.
        var transform = new EvalTransform(inputSize: 32);
        var random = new Random(3);
        var pixels = new byte[50 * 40 * 3];
        random.NextBytes(pixels);
        var original = new RgbBuffer(pixels, 50, 40);
        using var image = original.ToImage();
        var plan = transform.Plan(50, 40);
        var tokens = new int[4, 4];
        for (int i = 0; i < 16; i++) tokens[i / 4, i % 4] = random.Next(Codebook);
        var options = new TokenMapRenderOptions { Scale = 1 };

        using var fromPlan = TokenMapRenderer.Render(image, plan, tokens, Codebook, options);
        using var fromCrop = TokenMapRenderer.Render(transform.CropU8(original), tokens, Codebook, options);

        Assert.Equal((32, 32), (fromPlan.Width, fromPlan.Height));
        var a = new byte[32 * 32 * 3];
        var b = new byte[32 * 32 * 3];
        fromPlan.CopyPixelDataTo(a);
        fromCrop.CopyPixelDataTo(b);
        Assert.Equal(b, a);
    }

    [Theory]
    [InlineData(50, 40, 0.875)]
    [InlineData(20, 13, 2.0)]   // crop larger than the resized image: black padding
    [InlineData(36, 36, 0.875)] // no resize
    public void ModelView_EqualsEvalTransformCrop(int width, int height, double cropPct)
    {
        var transform = new EvalTransform(inputSize: 32, cropPct: cropPct);
        var pixels = new byte[width * height * 3];
        new Random(width).NextBytes(pixels);
        var original = new RgbBuffer(pixels, width, height);

        var view = ModelView.Crop(original, transform.Plan(width, height));

        Assert.Equal(transform.CropU8(original).Pixels, view.Pixels);
    }

    [Fact]
    public void Png_IsDeterministic()
    {
        var tokens = Tokens((r, c) => r * c);
        var first = TokenMapRenderer.RenderPng(FlatGrey(View, View, 90), tokens, Codebook);
        Assert.Equal(first, TokenMapRenderer.RenderPng(FlatGrey(View, View, 90), tokens, Codebook));
        Assert.Equal(["IHDR", "IDAT", "IEND"], PngAssert.ChunkTypes(first).Distinct());
    }

    [Fact]
    public void RejectsBadInput()
    {
        var view = FlatGrey(View, View);
        var tokens = Tokens((_, _) => 0);
        tokens[3, 4] = Codebook;
        Assert.Throws<ArgumentException>(() => TokenMapRenderer.Render(view, tokens, Codebook));
        tokens[3, 4] = -1;
        Assert.Throws<ArgumentException>(() => TokenMapRenderer.Render(view, tokens, Codebook));
        Assert.Throws<ArgumentException>(() => TokenMapRenderer.Render(FlatGrey(10, 10), new int[11, 2], Codebook));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            TokenMapRenderer.Render(view, Tokens((_, _) => 0), Codebook, new TokenMapRenderOptions { Alpha = -0.1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            TokenMapRenderer.Render(view, Tokens((_, _) => 0), Codebook, new TokenMapRenderOptions { Scale = 0 }));
        using var wrongSize = new Image<Rgb24>(30, 30);
        Assert.Throws<ArgumentException>(() =>
            TokenMapRenderer.Render(wrongSize, new EvalTransform(32).Plan(50, 40), new int[4, 4], Codebook));
    }

    [Fact]
    public void ToGrid_ReshapesInt64Tokens()
    {
        long[] flat = [1, 2, 3, 4, 5, 6];
        var grid = TokenMapRenderer.ToGrid(flat, rows: 2, cols: 3);
        Assert.Equal(new[,] { { 1, 2, 3 }, { 4, 5, 6 } }, grid);
        Assert.Throws<ArgumentException>(() => TokenMapRenderer.ToGrid(flat, 2, 2));
        Assert.Throws<ArgumentException>(() => TokenMapRenderer.ToGrid([1L << 40], 1, 1));
    }
}
