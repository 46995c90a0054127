using BeitV2.Ml.Imaging.Rendering;
using BeitV2.Web.Errors;
using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.AspNetCore.Http.HttpResults;

namespace BeitV2.Web.Api;

/// <summary><c>/api/v1/tokens</c>, <c>/embeddings</c>, <c>/classify</c>, <c>/segment</c>.</summary>
public static class InferenceApi
{
    public static RouteGroupBuilder MapInferenceApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1").WithTags("Inference").RequireAuthorization(ApiKeyAuthentication.InferencePolicy)
            .RequireRateLimiting(RateLimiting.InferencePolicy);   // MaxInFlight running, MaxQueued waiting, then 429

        group.MapPost("/tokens", Tokens)
            .WithSummary("Visual tokens of each image (VQ-KD tokenizer)")
            .WithDescription("Upload images as multipart parts named 'image' or one raw image/* body. With format=png and one image, returns the token map drawn over the image.")
            .WithMetadata(new ImageUploadMetadata())
            .Produces<TokensResponse>().Produces(200, contentType: "image/png").WithProblems();

        group.MapPost("/embeddings", Embeddings)
            .WithSummary("One embedding per image ([CLS] or mean-pooled)")
            .WithMetadata(new ImageUploadMetadata())
            .Produces<EmbeddingsResponse>().WithProblems();

        group.MapPost("/classify", Classify)
            .WithSummary("Top-k class predictions per image")
            .WithMetadata(new ImageUploadMetadata())
            .Produces<ClassifyResponse>().WithProblems();

        group.MapPost("/segment", Segment)
            .WithSummary("A class-index mask per image, at the image's size")
            .WithDescription("maskPng is a base64 8-bit PNG whose pixel values are class indices. With one image, format=png returns that PNG and format=overlay a colour overlay.")
            .WithMetadata(new ImageUploadMetadata())
            .Produces<SegmentResponse>().Produces(200, contentType: "image/png").WithProblems();

        return group;
    }

    private static async Task<IResult> Tokens(HttpRequest request, InferenceService inference, string? model, string? format, CancellationToken ct)
    {
        if (format is not null and not "json" and not "png")
            throw new InvalidRequestException($"format must be 'json' or 'png', not '{format}'.");
        var info = inference.ResolveModel(model, "tokens", ApiModelKinds.Tokenizer);
        using var run = await inference.RunAsync<long[]>(request, info, Operations.Tokens, ct, keepImages: format == "png");
        var grid = info.ImageSize / info.PatchSize;
        if (format == "png")
        {
            if (run.Images.Count != 1) throw new InvalidRequestException("format=png takes exactly one image.");
            var png = TokenMapRenderer.RenderPng(run.Images[0].Image!, run.Plans[0]!, TokenMapRenderer.ToGrid(run.Results[0], grid, grid), info.CodebookSize ?? 0);
            return TypedResults.File(png, "image/png");
        }
        var images = run.Results.Select((ids, i) => new ImageTokens(i,
            Enumerable.Range(0, grid).Select(r => ids.Skip(r * grid).Take(grid).Select(v => (int)v).ToArray()).ToArray(),
            ids.Distinct().Count(),
            TokenView.From(run.Images[i].Width, run.Images[i].Height, run.Plans[i]))).ToList();
        return TypedResults.Ok(new TokensResponse(info.Id, grid, grid, info.CodebookSize ?? 0, images));
    }

    private static async Task<Ok<EmbeddingsResponse>> Embeddings(HttpRequest request, InferenceService inference, string? model,
        string? pooling, bool? normalize, CancellationToken ct)
    {
        pooling ??= "cls";
        if (pooling is not "cls" and not "mean")
            throw new InvalidRequestException($"pooling must be 'cls' or 'mean', not '{pooling}'.");
        var info = inference.ResolveModel(model, "embeddings", ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain);
        using var run = await inference.RunAsync<FeatureResult>(request, info, Operations.Features, ct);
        var data = run.Results.Select((f, i) =>
        {
            var v = pooling == "cls" ? f.Cls : f.Mean;
            if (normalize == true)
            {
                var norm = (float)Math.Sqrt(v.Sum(x => (double)x * x));
                v = norm > 0 ? v.Select(x => x / norm).ToArray() : v;
            }
            return new ImageEmbedding(i, v);
        }).ToList();
        return TypedResults.Ok(new EmbeddingsResponse(info.Id, data.FirstOrDefault()?.Embedding.Length ?? info.EmbedDim, pooling, normalize == true, data));
    }

    private static async Task<Ok<ClassifyResponse>> Classify(HttpRequest request, InferenceService inference, LabelStore labels,
        string? model, int? topK, CancellationToken ct)
    {
        var k = topK ?? 5;
        if (k < 1) throw new InvalidRequestException($"topK must be at least 1, not {k}.");
        var info = inference.ResolveModel(model, "classify", ApiModelKinds.Classifier);
        using var run = await inference.RunAsync<float[]>(request, info, Operations.Classify, ct);
        var images = run.Results.Select((p, i) => new ImagePredictions(i,
            p.Select((prob, c) => (prob, c)).OrderByDescending(x => x.prob).Take(k)
             .Select(x => new ClassPrediction(x.c, labels.Label(info.Id, x.c), x.prob)).ToList())).ToList();
        return TypedResults.Ok(new ClassifyResponse(info.Id, images));
    }

    private static async Task<IResult> Segment(HttpRequest request, InferenceService inference, LabelStore labels,
        string? model, string? format, CancellationToken ct)
    {
        if (format is not null and not "json" and not "png" and not "overlay")
            throw new InvalidRequestException($"format must be 'json', 'png' or 'overlay', not '{format}'.");
        var info = inference.ResolveModel(model, "segment", ApiModelKinds.Segmenter);
        using var run = await inference.RunAsync<int[]>(request, info, Operations.Segment, ct, keepImages: format == "overlay");
        var size = info.ImageSize;
        // One full-size mask at a time (4 bytes per pixel of the original image), dropped once encoded.
        int[] Mask(int i) => ClassMapResizer.FromFullImageResize(run.Results[i], size, size, run.Images[i].Width, run.Images[i].Height);
        if (format is "png" or "overlay")
        {
            if (run.Images.Count != 1) throw new InvalidRequestException($"format={format} takes exactly one image.");
            var (width, height) = (run.Images[0].Width, run.Images[0].Height);
            var png = format == "png"
                ? SegmentationRenderer.MaskPng(Mask(0), width, height)
                : SegmentationRenderer.OverlayPng(run.Images[0].Image!, Mask(0), width, height);
            return TypedResults.File(png, "image/png");
        }
        var images = run.Images.Select((image, i) =>
        {
            var mask = Mask(i);
            var classes = mask.GroupBy(c => c).OrderByDescending(g => g.Count())
                .Select(g => new SegmentClass(g.Key, labels.Label(info.Id, g.Key), (double)g.Count() / mask.Length)).ToList();
            return new ImageSegmentation(i, image.Width, image.Height, classes,
                Convert.ToBase64String(SegmentationRenderer.MaskPng(mask, image.Width, image.Height)));
        }).ToList();
        return TypedResults.Ok(new SegmentResponse(info.Id, images));
    }

    internal static RouteHandlerBuilder WithProblems(this RouteHandlerBuilder b) => b
        .ProducesProblem(400).ProducesProblem(401).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415)
        .ProducesProblem(422).ProducesProblem(429).ProducesProblem(503);
}
