using BeitV2.Ml.Imaging.Rendering;
using BeitV2.Ml.Serving;
using BeitV2.Web.Errors;
using BeitV2.Web.Hosting;
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
            .WithDescription("Upload images as multipart parts named 'image' or one raw image/* body. With format=png and one image, returns the token map drawn over the image, " +
                             "its longer side 'size' pixels (default 512, 64 to 2048).")
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
            .WithDescription("maskPng is a base64 8-bit PNG whose pixel values are class indices. With one image, format=png returns that PNG and format=overlay a colour overlay " +
                             "with a legend below it (each class's colour, name and share of the pixels).")
            .WithMetadata(new ImageUploadMetadata())
            .Produces<SegmentResponse>().Produces(200, contentType: "image/png").WithProblems();

        return group;
    }

    /// <summary>The longer side of the token map picture when the request names none.</summary>
    public const int DefaultTokenMapSize = 512;

    private static async Task<IResult> Tokens(HttpRequest request, InferenceService inference, string? model, string? format, int? size, CancellationToken ct)
    {
        if (format is not null and not "json" and not "png")
            throw new InvalidRequestException($"format must be 'json' or 'png', not '{format}'.");
        if (size is < TokenMapRenderer.MinOverImageSide or > TokenMapRenderer.MaxOverImageSide)
            throw new InvalidRequestException(
                $"size (the longer side of the picture, in pixels) must be between {TokenMapRenderer.MinOverImageSide} and {TokenMapRenderer.MaxOverImageSide}, not {size}.");
        var info = inference.ResolveModel(model, Operation.Tokens);
        using var run = await inference.RunAsync(request, info, ServedOperations.Tokens, ct, keepImages: format == "png");
        var grid = info.ImageSize / info.PatchSize;
        if (format == "png")
        {
            if (run.Images.Count != 1) throw new InvalidRequestException("format=png takes exactly one image.");
            var only = run.Images[0];
            var png = TokenMapRenderer.RenderOverImagePng(only.Image.Image!, only.Plan!, TokenMapRenderer.ToGrid(only.Result.Ids, grid, grid),
                info.CodebookSize ?? 0, size ?? DefaultTokenMapSize);
            return TypedResults.File(png, "image/png");
        }
        var images = run.Images.Select((item, i) =>
        {
            var ids = item.Result.Ids;
            return new ImageTokens(i,
                Enumerable.Range(0, grid).Select(r => ids.Skip(r * grid).Take(grid).Select(v => (int)v).ToArray()).ToArray(),
                ids.Distinct().Count(),
                TokenView.From(item.Image.Width, item.Image.Height, item.Plan));
        }).ToList();
        return TypedResults.Ok(new TokensResponse(info.Id, grid, grid, info.CodebookSize ?? 0, images, DomainNote.Of(info)));
    }

    private static async Task<Ok<EmbeddingsResponse>> Embeddings(HttpRequest request, InferenceService inference, string? model,
        string? pooling, bool? normalize, CancellationToken ct)
    {
        pooling ??= "cls";
        if (pooling is not "cls" and not "mean")
            throw new InvalidRequestException($"pooling must be 'cls' or 'mean', not '{pooling}'.");
        var info = inference.ResolveModel(model, Operation.Features);
        using var run = await inference.RunAsync(request, info, ServedOperations.Features, ct);
        var data = run.Images.Select((item, i) =>
        {
            var f = item.Result;
            var v = pooling == "cls" ? f.Cls : f.Mean;
            if (normalize == true)
            {
                var norm = (float)Math.Sqrt(v.Sum(x => (double)x * x));
                v = norm > 0 ? v.Select(x => x / norm).ToArray() : v;
            }
            return new ImageEmbedding(i, v, run.Score(f.Mean));
        }).ToList();
        return TypedResults.Ok(new EmbeddingsResponse(info.Id, data.FirstOrDefault()?.Embedding.Length ?? info.EmbedDim, pooling, normalize == true, data,
            DomainNote.Of(info)));
    }

    private static async Task<Ok<ClassifyResponse>> Classify(HttpRequest request, InferenceService inference, LabelStore labels,
        string? model, int? topK, CancellationToken ct)
    {
        var k = topK ?? 5;
        if (k < 1) throw new InvalidRequestException($"topK must be at least 1, not {k}.");
        var info = inference.ResolveModel(model, Operation.Classify);
        using var run = await inference.RunAsync(request, info, ServedOperations.Classify, ct);
        var images = run.Images.Select((item, i) => new ImagePredictions(i,
            item.Result.Probabilities.Select((prob, c) => (prob, c)).OrderByDescending(x => x.prob).Take(k)
             .Select(x => new ClassPrediction(x.c, labels.Label(info.Id, x.c), x.prob)).ToList(),
            run.Score(item.Result.Feature))).ToList();
        return TypedResults.Ok(new ClassifyResponse(info.Id, images, DomainNote.Of(info)));
    }

    private static async Task<IResult> Segment(HttpRequest request, InferenceService inference, LabelStore labels,
        string? model, string? format, CancellationToken ct)
    {
        if (format is not null and not "json" and not "png" and not "overlay")
            throw new InvalidRequestException($"format must be 'json', 'png' or 'overlay', not '{format}'.");
        var info = inference.ResolveModel(model, Operation.Segment);
        using var run = await inference.RunAsync(request, info, ServedOperations.Segment, ct, keepImages: format == "overlay");
        // One full-size mask at a time (4 bytes per pixel of the original image), dropped once encoded.
        static int[] Mask(ImageRun<ClassMap> item) => ClassMapResizer.FromFullImageResize(item.Result.Classes, item.Result.Width, item.Result.Height,
            item.Image.Width, item.Image.Height);
        if (format is "png" or "overlay")
        {
            if (run.Images.Count != 1) throw new InvalidRequestException($"format={format} takes exactly one image.");
            var only = run.Images[0];
            var (width, height) = (only.Image.Width, only.Image.Height);
            var mask = Mask(only);
            if (format == "png") return TypedResults.File(SegmentationRenderer.MaskPng(mask, width, height), "image/png");
            using var overlay = SegmentationRenderer.Overlay(only.Image.Image!, mask, width, height);
            using var legended = SegmentationLegend.AppendBelow(overlay, SegmentationLegend.Entries(mask, c => labels.Label(info.Id, c)));
            return TypedResults.File(PngOutput.EncodeRgb(legended), "image/png");
        }
        var images = run.Images.Select((item, i) =>
        {
            var image = item.Image;
            var mask = Mask(item);
            var classes = mask.GroupBy(c => c).OrderByDescending(g => g.Count())
                .Select(g => new SegmentClass(g.Key, labels.Label(info.Id, g.Key), (double)g.Count() / mask.Length)).ToList();
            return new ImageSegmentation(i, image.Width, image.Height, classes,
                Convert.ToBase64String(SegmentationRenderer.MaskPng(mask, image.Width, image.Height)), run.Score(item.Result.Feature));
        }).ToList();
        return TypedResults.Ok(new SegmentResponse(info.Id, images, DomainNote.Of(info)));
    }

    internal static RouteHandlerBuilder WithProblems(this RouteHandlerBuilder b) => b
        .ProducesProblem(400).ProducesProblem(401).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415)
        .ProducesProblem(422).ProducesProblem(429).ProducesProblem(503);
}
