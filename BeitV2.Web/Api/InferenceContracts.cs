namespace BeitV2.Web.Api;

/// <summary>Visual tokens of each image: a rows×cols grid of codebook ids (row-major patches).</summary>
public sealed record TokensResponse(string Model, int Rows, int Cols, int CodebookSize, IReadOnlyList<ImageTokens> Images);

/// <param name="View">The part of the image the tokenizer saw (the grid covers it; additive, see <see cref="TokenView"/>).</param>
public sealed record ImageTokens(int Index, int[][] Tokens, int DistinctCodes, TokenView? View = null);

/// <summary>
/// Where the token grid lies on the uploaded image: the square the tokenizer saw, in pixels of the
/// decoded image (EXIF orientation applied), after the evaluation transform's shorter-side resize and
/// centre crop. Patch (r, c) covers x + c·width/cols … x + (c+1)·width/cols (likewise for rows). The
/// square can extend past the image (negative x/y) for an image smaller than the crop: that part was zeros.
/// </summary>
public sealed record TokenView(int ImageWidth, int ImageHeight, double X, double Y, double Width, double Height)
{
    public static TokenView From(int width, int height, BeitV2.Ml.Imaging.EvalTransformPlan? plan)
    {
        if (plan is null) return new TokenView(width, height, 0, 0, width, height);
        double sx = (double)plan.OriginalWidth / plan.ResizedWidth, sy = (double)plan.OriginalHeight / plan.ResizedHeight;
        var crop = plan.Crop;
        return new TokenView(width, height, crop.Left * sx, crop.Top * sy, crop.Width * sx, crop.Height * sy);
    }
}

/// <summary>One embedding per image.</summary>
public sealed record EmbeddingsResponse(string Model, int Dim, string Pooling, bool Normalized, IReadOnlyList<ImageEmbedding> Data);

public sealed record ImageEmbedding(int Index, float[] Embedding);

/// <summary>Top-k class predictions per image.</summary>
public sealed record ClassifyResponse(string Model, IReadOnlyList<ImagePredictions> Images);

public sealed record ImagePredictions(int Index, IReadOnlyList<ClassPrediction> Predictions);

public sealed record ClassPrediction(int ClassIndex, string Label, float Probability);

/// <summary>A class-index mask per image, at the image's own size.</summary>
public sealed record SegmentResponse(string Model, IReadOnlyList<ImageSegmentation> Images);

public sealed record ImageSegmentation(int Index, int Width, int Height, IReadOnlyList<SegmentClass> Classes, string MaskPng);

public sealed record SegmentClass(int ClassIndex, string Label, double PixelFraction);
