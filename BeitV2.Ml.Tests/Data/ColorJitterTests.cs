using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;

namespace BeitV2.Ml.Tests.Data;

public sealed class ColorJitterTests
{
    // A 7x5 image with value (37x + 91y + 53c + 13xy) mod 256.
    private static RgbBuffer Pattern()
    {
        var px = new byte[7 * 5 * 3];
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
                for (int c = 0; c < 3; c++)
                    px[(y * 7 + x) * 3 + c] = (byte)((x * 37 + y * 91 + c * 53 + x * y * 13) % 256);
        return new RgbBuffer(px, 7, 5);
    }

    // Outputs of Pillow 9.4 (Debian 12): np.asarray(ImageEnhance.X(img).enhance(f)).tobytes().hex().
    [Theory]
    [InlineData("brightness", 0.63, "00214217385a2e50714567885d7ea07495168b0b2d395a7c587a9b7899199717391637583556785576977294149a1a3b20426348698b7091119717391e3f610a2c4d3a5b7d6a8b0b9a1a3b284a6b587a9b88082a4465867c9d1d1234554a6c8d830324193b5c517394")]
    [InlineData("brightness", 1.37, "004891327bc365adf698e0ffcafffffdff2fff1a627cc5ffc1ffffffff38ff347c2f78c174bdffb8fffff9ff2bff3982478fd89de6fff3ff26ff347c418ad2175fa87fc8ffe7ff1aff398259a1eac1ffffff135b93dcffffff402971baa3ebffff064f3880c9b2faff")]
    [InlineData("contrast", 0.63, "30527348698a5f80a27698b98eafd0a5c646bc3c5e6a8bac89abcca9ca4ac8486a4668896687a985a7c8a3c445cb4b6c517294799abca0c242c8486a4f70913b5c7e6b8cae9bbc3ccb4b6c597b9c89abccb9395b7496b7acce4e4365867b9dbeb333554a6c8d82a4c5")]
    [InlineData("contrast", 1.37, "001760014a93347dc567aff899e2ffccff00ff00314b94dd90d8ffd4ff07ff034b004790438cd488d0ffc8ff00ff0851165fa76cb5fdc3ff00ff034b1059a2002f774e97dfb6ff00ff08512870b990d8fff8002a63abf4ddff0f00408972baffec001e074f9881c9ff")]
    [InlineData("saturation", 0.63, "0f3152345677597b9c7ea0c1a3c5e6bedf5fab2b4d6a8cad9cbedfc4e565be3e603254756486a796b8d9bbdc5cc2426443658682a4c5b7d858be3e603f61822042636c8eafaecf4fc242645072939cbedfa626487b9dbecaeb6b2d4f7086a8c99d1d3f385a7b91b3d4")]
    [InlineData("saturation", 1.37, "003881155da63a82cb5fa7f084ccffb3fc00ff00424b93dc7dc5ffb9ff00ff0d55135ba4458dd677bfffb0f900ff1159246cb563abf4acf500ff0d552068b10149924d95dea3ec00ff11593179c27dc5ffff003d5ca4edbfff000e569f67aff8ff00341961aa72baff")]
    public void Adjustments_MatchPillowBitForBit(string kind, double factor, string expectedHex)
    {
        var image = Pattern();
        var result = kind switch
        {
            "brightness" => ColorJitter.AdjustBrightness(image, factor),
            "contrast" => ColorJitter.AdjustContrast(image, factor),
            _ => ColorJitter.AdjustSaturation(image, factor),
        };
        Assert.Equal(expectedHex, Convert.ToHexStringLower(result.Pixels));
    }

    [Fact]
    public void Luma_MatchesPillowsConvertL()
    {
        // np.asarray(img.convert('L')) of the pattern.
        const string expected = "2b50759abfc75686b8cd694e80b2c46d5f9ec0695b3c88b76d6cb85197d349a24854ad";
        var px = Pattern().Pixels;
        var luma = new byte[35];
        for (int i = 0; i < 35; i++) luma[i] = (byte)ColorJitter.Luma(px[3 * i], px[3 * i + 1], px[3 * i + 2]);
        Assert.Equal(expected, Convert.ToHexStringLower(luma));
        Assert.Equal(76, ColorJitter.Luma(255, 0, 0));
    }

    [Fact]
    public void Draw_FollowsTorchvisionsRanges_AndRandomOrder()
    {
        var jitter = new ColorJitter(0.4, 0.4, 0.0);
        Assert.Null(jitter.Saturation);
        Assert.Equal((0.6, 1.4), jitter.Brightness);
        var random = new Random(8);
        var orders = new HashSet<string>();
        for (int i = 0; i < 300; i++)
        {
            var p = jitter.Draw(random);
            Assert.InRange(p.Brightness!.Value, 0.6, 1.4);
            Assert.InRange(p.Contrast!.Value, 0.6, 1.4);
            Assert.Null(p.Saturation);
            Assert.Equal(3, p.Order.Distinct().Count());
            orders.Add(string.Join(",", p.Order));
        }
        Assert.Equal(6, orders.Count);

        // Applying is deterministic given the parameters; factor 1 is the identity.
        var image = Pattern();
        var identity = new ColorJitterParameters([ColorAdjustment.Contrast, ColorAdjustment.Brightness, ColorAdjustment.Saturation], 1.0, 1.0, 1.0);
        Assert.Equal(image.Pixels, ColorJitter.Apply(image, identity).Pixels);
    }
}
