using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Api;

/// <summary>TEMPORARY until the renderers land.</summary>
internal static class TokenPictures
{
    public static byte[] Render(Image<Rgb24> image, EvalTransformPlan plan, long[] tokens, int rows, int cols, int codebookSize) =>
        throw new NotSupportedException();
}
