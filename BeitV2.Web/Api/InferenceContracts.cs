using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Domain;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Api;

/// <summary>Visual tokens of each image: a rows×cols grid of codebook ids (row-major patches).</summary>
/// <param name="Domain">what the model was trained on (additive).</param>
public sealed record TokensResponse(string Model, int Rows, int Cols, int CodebookSize, IReadOnlyList<ImageTokens> Images, DomainNote? Domain = null);

/// <param name="View">The part of the image the tokenizer saw (the grid covers it; additive, see <see cref="TokenView"/>).</param>
/// <param name="OutOfDomain">always null: a tokenizer has no pooled feature to score the image by (additive, for a uniform shape).</param>
public sealed record ImageTokens(int Index, int[][] Tokens, int DistinctCodes, TokenView? View = null, OutOfDomainScore? OutOfDomain = null);

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
public sealed record EmbeddingsResponse(string Model, int Dim, string Pooling, bool Normalized, IReadOnlyList<ImageEmbedding> Data, DomainNote? Domain = null);

/// <param name="OutOfDomain">how far the image lies from the model's training images (from its mean-pooled feature, whatever the
/// pooling asked for); null when the model has no out-of-domain fit.</param>
public sealed record ImageEmbedding(int Index, float[] Embedding, OutOfDomainScore? OutOfDomain = null);

/// <summary>Top-k class predictions per image.</summary>
public sealed record ClassifyResponse(string Model, IReadOnlyList<ImagePredictions> Images, DomainNote? Domain = null);

/// <param name="OutOfDomain">how far the image lies from the model's training images; null when the model has no out-of-domain fit.</param>
public sealed record ImagePredictions(int Index, IReadOnlyList<ClassPrediction> Predictions, OutOfDomainScore? OutOfDomain = null);

public sealed record ClassPrediction(int ClassIndex, string Label, float Probability);

/// <summary>A class-index mask per image, at the image's own size.</summary>
public sealed record SegmentResponse(string Model, IReadOnlyList<ImageSegmentation> Images, DomainNote? Domain = null);

/// <param name="OutOfDomain">how far the image lies from the model's training scenes; null when the model has no out-of-domain fit.</param>
public sealed record ImageSegmentation(int Index, int Width, int Height, IReadOnlyList<SegmentClass> Classes, string MaskPng,
    OutOfDomainScore? OutOfDomain = null);

public sealed record SegmentClass(int ClassIndex, string Label, double PixelFraction);

/// <summary>
/// The model-level note every inference response carries: what the model was trained on, in a line, and its measured
/// quality, so an answer is read with the domain it holds in.
/// </summary>
/// <param name="Dataset">the training dataset ("unknown" when the package does not say).</param>
/// <param name="Description">one line: what the model is for and what it is not.</param>
/// <param name="InputKind">the kind of image it was trained on.</param>
/// <param name="Quality">its measured quality (accuracy or mIoU, and the split), when measured.</param>
public sealed record DomainNote(string Dataset, string Description, string InputKind, ModelQuality? Quality)
{
    public static DomainNote Of(ModelInfo model)
    {
        var d = model.Domain ?? ModelDomain.UnknownDomain;
        return new DomainNote(d.Dataset, d.Description, d.InputKind, d.Quality);
    }
}
