using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Api;

/// <summary>The token map drawn over the part of the image the tokenizer saw.</summary>
internal static class TokenPictures
{
    public static byte[] Render(Image<Rgb24> image, EvalTransformPlan plan, long[] tokens, int rows, int cols, int codebookSize) =>
        TokenMapRenderer.RenderPng(image, plan, TokenMapRenderer.ToGrid(tokens, rows, cols), codebookSize);
}
