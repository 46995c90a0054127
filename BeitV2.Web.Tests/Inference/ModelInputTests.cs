using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using BeitV2.Web.Inference;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Tests.Inference;

/// <summary>
/// The serving preprocessing (<see cref="ModelInput.Prepare"/>: pixels read from the decoded image's own memory,
/// a rented CHW array) gives exactly the pixels of the plain evaluation transform on a copied RGB buffer.
/// </summary>
public sealed class ModelInputTests
{
    private static Image<Rgb24> Photo(int width, int height, int seed)
    {
        var random = new Random(seed);
        var image = new Image<Rgb24>(width, height);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                image[x, y] = new Rgb24((byte)(x * 255 / width), (byte)random.Next(256), (byte)((x + y) % 256));
        return image;
    }

    [Theory]
    [InlineData(640, 480, ModelPreprocessing.CenterCrop, true)]    // resize + crop inside the image
    [InlineData(224, 224, ModelPreprocessing.CenterCrop, true)]    // no resampling at all
    [InlineData(100, 60, ModelPreprocessing.CenterCrop, true)]     // upscaled
    [InlineData(300, 200, ModelPreprocessing.CenterCrop, false)]   // [0, 1] input (tokenizers)
    [InlineData(300, 200, ModelPreprocessing.Squash, true)]    // segmentation: the whole image
    [InlineData(224, 224, ModelPreprocessing.Squash, true)]
    public void Prepare_EqualsTheEvaluationTransformOnACopy(int width, int height, string geometry, bool normalize)
    {
        using var image = Photo(width, height, width + height);
        var normalization = normalize ? PixelNormalization.ImageNet : PixelNormalization.Unit;
        var input = new ModelInput(geometry == ModelPreprocessing.CenterCrop
            ? ModelPreprocessing.Centre(224, normalization)
            : ModelPreprocessing.FullResize(224, normalization));
        var transform = new EvalTransform(224, normalization: PixelNormalization.ImageNet);
        var rgb = RgbBuffer.FromImage(image);
        var view = geometry == ModelPreprocessing.CenterCrop ? transform.CropU8(rgb)
            : width == 224 && height == 224 ? rgb : PilResize.Resize(rgb, 224, 224);
        var expected = transform.ToChw(view, normalize);

        var actual = input.Prepare(image, out var plan);
        try
        {
            Assert.True(actual.Length >= input.Length);
            Assert.Equal(expected, actual.AsSpan(0, input.Length).ToArray());
            Assert.Equal(geometry == ModelPreprocessing.CenterCrop, plan is not null);
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(actual);
        }
    }

    [Fact]
    public void CropU8_OfASpan_EqualsCropU8_OfABuffer_IncludingPadding()
    {
        // crop_pct 1.5: the shorter side goes to int(224 / 1.5) = 149, smaller than the 224 crop, so the crop is
        // padded with zeros around the resized pixels (the path that still copies into a fresh output).
        using var image = Photo(150, 100, 7);
        var transform = new EvalTransform(224, cropPct: 1.5);
        var rgb = RgbBuffer.FromImage(image);
        var viaBuffer = transform.CropU8(rgb);
        var viaSpan = transform.CropU8(rgb.Pixels.AsSpan(), rgb.Width, rgb.Height);
        Assert.Equal(viaBuffer.Pixels, viaSpan.Pixels);
        Assert.All(viaSpan.Pixels.AsSpan(0, 224 * 3).ToArray(), b => Assert.Equal(0, b));   // the first row is padding
        Assert.Contains(viaSpan.Pixels, b => b != 0);
    }
}
