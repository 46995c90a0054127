namespace BeitV2.Web.Api;

/// <summary>Visual tokens of each image: a rows×cols grid of codebook ids (row-major patches).</summary>
public sealed record TokensResponse(string Model, int Rows, int Cols, int CodebookSize, IReadOnlyList<ImageTokens> Images);

public sealed record ImageTokens(int Index, int[][] Tokens, int DistinctCodes);

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
