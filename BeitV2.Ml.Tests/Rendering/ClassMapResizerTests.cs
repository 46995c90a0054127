using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Rendering;

public sealed class ClassMapResizerTests
{
    [Fact]
    public void Nearest_2x2To5x3_HandComputed()
    {
        // Rows 2 → 5: s = 0.4f, d = 0..4 reads floor(0, .4, .8, 1.2, 1.6) = 0,0,0,1,1.
        // Cols 2 → 3: s = 0.6666667f, d = 0..2 reads floor(0, .67, 1.33) = 0,0,1.
        int[] source = [1, 2,
                        3, 4];
        var result = ClassMapResizer.ResizeNearest(source, width: 2, height: 2, outWidth: 3, outHeight: 5);
        int[] expected = [1, 1, 2,
                          1, 1, 2,
                          1, 1, 2,
                          3, 3, 4,
                          3, 3, 4];
        Assert.Equal(expected, result);
    }

    [Fact]
    public void NearestSourceIndex_UsesFloat32LikeAten()
    {
        // Exact arithmetic says 23·14/46 = 7; ATen's float32 product is 6.9999995 → 6.
        Assert.Equal(6, ClassMapResizer.NearestSourceIndex(23, 14, 46));
        Assert.Equal(12, ClassMapResizer.NearestSourceIndex(11, 26, 22)); // exact: 13
        Assert.Equal(5, ClassMapResizer.NearestSourceIndex(11, 6, 12));   // doubling shortcut: 11 >> 1
        Assert.Equal(9, ClassMapResizer.NearestSourceIndex(9, 10, 10));   // identity
    }

    [Theory]
    [InlineData(7, 5, 23, 17)]   // upscale, uneven factors
    [InlineData(14, 14, 46, 46)] // includes the float32 rounding case above
    [InlineData(26, 39, 22, 33)] // downscale, includes 26 → 22 and 39 → 33 rounding cases
    [InlineData(9, 4, 18, 8)]    // exact doubling
    [InlineData(56, 56, 224, 224)]
    public void Nearest_MatchesTorchInterpolate(int width, int height, int outWidth, int outHeight)
    {
        var random = new Random(width * 1000 + height);
        var map = new int[width * height];
        for (int i = 0; i < map.Length; i++) map[i] = random.Next(150);

        var result = ClassMapResizer.ResizeNearest(map, width, height, outWidth, outHeight);

        Assert.Equal(TorchNearest(map, width, height, outWidth, outHeight), result);
    }

    [Fact]
    public void Nearest_RejectsWrongLength()
    {
        Assert.Throws<ArgumentException>(() => ClassMapResizer.ResizeNearest(new int[5], 2, 3, 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClassMapResizer.ResizeNearest(new int[6], 2, 3, 0, 4));
    }

    [Fact]
    public void FromFullImageResize_IsNearestResizeToTheOriginal()
    {
        int[] mask = [0, 1, 2, 3, 4, 5];
        Assert.Equal(
            ClassMapResizer.ResizeNearest(mask, 3, 2, 10, 7),
            ClassMapResizer.FromFullImageResize(mask, 3, 2, originalWidth: 10, originalHeight: 7));
    }

    [Fact]
    public void FromCenterCrop_NoResize_PlacesMaskAtCropOffset()
    {
        // resizeTo = int(4 / 0.5) = 8 = shorter side of an 8x12 image: no resize; the 4x4 crop
        // starts at (round((8-4)/2), round((12-4)/2)) = (2, 4).
        var plan = new EvalTransform(inputSize: 4, cropPct: 0.5).Plan(8, 12);
        Assert.False(plan.IsResized);
        Assert.Equal(new CropBox(2, 4, 6, 8), plan.Crop);
        var mask = Enumerable.Range(1, 16).ToArray();

        var result = ClassMapResizer.FromCenterCrop(mask, 4, 4, plan, ignoreClass: 255);

        Assert.Equal(8 * 12, result.Length);
        for (int y = 0; y < 12; y++)
        for (int x = 0; x < 8; x++)
        {
            bool inside = x is >= 2 and < 6 && y is >= 4 and < 8;
            Assert.Equal(inside ? mask[(y - 4) * 4 + (x - 2)] : 255, result[y * 8 + x]);
        }
    }

    [Fact]
    public void FromCenterCrop_UndoesResizeAndMaskResolution()
    {
        // 16x24 → 8x12 (halved), crop (2,4)-(6,8) in resized pixels = (4,8)-(12,16) in original
        // pixels; a 2x2 mask covers the crop, each mask pixel 4x4 original pixels.
        var plan = new EvalTransform(inputSize: 4, cropPct: 0.5).Plan(16, 24);
        Assert.Equal((8, 12), (plan.ResizedWidth, plan.ResizedHeight));
        int[] mask = [1, 2,
                      3, 4];

        var result = ClassMapResizer.FromCenterCrop(mask, 2, 2, plan, ignoreClass: 9);

        int At(int x, int y) => result[y * 16 + x];
        Assert.Equal(1, At(4, 8));
        Assert.Equal(1, At(7, 11));
        Assert.Equal(2, At(8, 8));
        Assert.Equal(3, At(4, 12));
        Assert.Equal(4, At(11, 15));
        Assert.Equal(9, At(3, 8));
        Assert.Equal(9, At(12, 8));
        Assert.Equal(9, At(4, 7));
        Assert.Equal(9, At(4, 16));
        Assert.Equal(16 * 24 - 8 * 8, result.Count(c => c == 9));
    }

    [Fact]
    public void FromCenterCrop_PaddedCrop_DropsThePadding()
    {
        // crop_pct 2: resizeTo = 4 = shorter side of 6x4, no resize; the 8x8 crop is padded:
        // left = -(8-6)/2 = -1, top = -(8-4)/2 = -2. Every original pixel is inside the crop.
        var plan = new EvalTransform(inputSize: 8, cropPct: 2.0).Plan(6, 4);
        Assert.Equal(new CropBox(-1, -2, 7, 6), plan.Crop);
        var mask = Enumerable.Range(0, 64).ToArray();

        var result = ClassMapResizer.FromCenterCrop(mask, 8, 8, plan);

        for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++)
            Assert.Equal(mask[(y + 2) * 8 + (x + 1)], result[y * 6 + x]);
    }

    [Fact]
    public void FromCenterCrop_MatchesTorchComposition()
    {
        // 37x23: resizeTo int(8/0.875) = 9, resized 14x9, crop 8 at (round(3), round(0.5) = 0).
        var plan = new EvalTransform(inputSize: 8, cropPct: 0.875).Plan(37, 23);
        Assert.Equal((14, 9), (plan.ResizedWidth, plan.ResizedHeight));
        Assert.Equal(new CropBox(3, 0, 11, 8), plan.Crop);
        var random = new Random(5);
        var mask = Enumerable.Range(0, 9).Select(_ => random.Next(1, 20)).ToArray();

        var result = ClassMapResizer.FromCenterCrop(mask, 3, 3, plan, ignoreClass: 0);

        // torch: resize the mask to the crop, paste it into a zero canvas, resize the canvas.
        var crop = TorchNearest(mask, 3, 3, 8, 8);
        var canvas = new int[14 * 9];
        for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++)
            canvas[(y + 0) * 14 + (x + 3)] = crop[y * 8 + x];
        Assert.Equal(TorchNearest(canvas, 14, 9, 37, 23), result);
    }

    private static int[] TorchNearest(int[] map, int width, int height, int outWidth, int outHeight)
    {
        using var scope = NewDisposeScope();
        var t = torch.tensor(map, new long[] { height, width }).unsqueeze(0).unsqueeze(0).to_type(ScalarType.Float32);
        var resized = nn.functional.interpolate(t, size: new long[] { outHeight, outWidth }, mode: InterpolationMode.Nearest);
        return resized.to_type(ScalarType.Int32).data<int>().ToArray();
    }
}
