using System.Text.Json;
using BeitV2.Web.Collections;
using BeitV2.Web.Errors;
using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Api;

/// <summary>
/// <c>/api/v1/collections</c>: datasets indexed by an embedding model (and optionally a tokenizer), searched by image, and
/// <c>/api/v1/models/{id}/codebook/{code}</c>: the patches of a collection that a tokenizer maps to a code.
/// </summary>
public static class CollectionsApi
{
    private static readonly JsonSerializerOptions RequestJson = new(JsonSerializerDefaults.Web);

    public static RouteGroupBuilder MapCollectionsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/collections").WithTags("Collections");

        group.MapPost("/", Create)
            .Accepts<CollectionRequest>("application/json")
            .WithSummary("Create a collection from a dataset: starts an index job that embeds (and with a tokenizer, tokenizes) its images")
            .Produces<CollectionAccepted>(StatusCodes.Status202Accepted)
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(404).ProducesProblem(415);

        group.MapGet("/", (CollectionService collections) => TypedResults.Ok(collections.List()))
            .WithSummary("All collections, with status, items and disk use");

        group.MapGet("/{id}", (string id, CollectionService collections) => TypedResults.Ok(collections.Get(id)))
            .WithSummary("One collection").ProducesProblem(404);

        group.MapDelete("/{id}", (string id, CollectionService collections) =>
            {
                collections.Delete(id);
                return TypedResults.NoContent();
            })
            .WithSummary("Delete a collection (its index job is cancelled first): frees its folder").ProducesProblem(401).ProducesProblem(404);

        group.MapPost("/{id}/images", async (string id, HttpRequest request, CollectionService collections, CancellationToken ct) =>
                TypedResults.Ok(await collections.AddImagesAsync(id, request, ct)))
            .WithSummary("Add images (multipart parts named 'image'): embedded and tokenized at once with the collection's models")
            .WithMetadata(new ImageUploadMetadata())
            .Produces<AddedImages>().WithProblems().ProducesProblem(409);

        group.MapPost("/{id}/search", async (string id, int? k, long? item, string? model, bool? exact, HttpRequest request, CollectionService collections,
                    CancellationToken ct) => TypedResults.Ok(await collections.SearchAsync(id, k, item, model, request, ct, exact ?? false)))
            .WithSummary("The k (1 to 100, default 10) items most similar to an image (multipart 'image' or a raw image/* body) or to item=N, by cosine similarity")
            .WithDescription("The query image is embedded by the collection's embedding model; 'model', when given, must be that model (409 otherwise). " +
                "exact=true scans every stored vector instead of asking the index (the reference for the index's recall; slow on big collections).")
            .WithMetadata(new ImageUploadMetadata())
            // Rate-limited as inference (it embeds an image), but never anonymous: Security:AnonymousInference opens the four
            // inference routes only, and a collection's items are the server's data.
            .RequireRateLimiting(RateLimiting.InferencePolicy)
            .Produces<SearchResults>().WithProblems().ProducesProblem(409);

        group.MapGet("/{id}/items/{item:long}", (string id, long item, CollectionService collections) => TypedResults.Ok(collections.Item(id, item)))
            .WithSummary("One item: its label, source (dataset index or uploaded file name) and size").ProducesProblem(404);

        group.MapGet("/{id}/items/{item:long}/thumbnail", (string id, long item, CollectionService collections) =>
                TypedResults.File(collections.Thumbnail(id, item), "image/png"))
            .WithSummary("The item as a PNG, at most 96 px (smaller images at their own size)")
            .Produces(200, contentType: "image/png").ProducesProblem(404);

        group.MapGet("/{id}/items/{item:long}/patch", (string id, long item, int? row, int? col, CollectionService collections) =>
                TypedResults.File(collections.Patch(id, item, row, col), "image/png"))
            .WithSummary("The square of the tokenizer's view that token (row, col) covers, upscaled to at least 48 px")
            .Produces(200, contentType: "image/png").ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);

        group.MapGet("/{id}/codes", (string id, CollectionService collections) => TypedResults.Ok(collections.Codes(id)))
            .WithSummary("Code statistics of a collection with a tokenizer: usage histogram, perplexity, top codes per class")
            .ProducesProblem(404).ProducesProblem(409);

        app.MapGet("/api/v1/models/{id}/codebook/{code:int}", (string id, int code, string? collection, int? limit, int? offset, CollectionService collections) =>
                TypedResults.Ok(collections.Codebook(id, code, collection, limit, offset)))
            .WithTags("Models")
            .WithSummary("Tokenizers: the patches of a collection (?collection=ID, indexed with this tokenizer) that map to this code, with crop URLs")
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
        return group;
    }

    private static async Task<IResult> Create(HttpRequest http, CollectionService collections, CancellationToken ct)
    {
        if (!http.HasJsonContentType())
            throw new UnsupportedInputException("Send the collection as application/json: {\"name\": \"clothes\", \"dataset\": \"fashion-mnist\"}.");
        CollectionRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync<CollectionRequest>(http.Body, RequestJson, ct);
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"The body is not a valid collection request: {e.Message}");
        }
        if (request is null) throw new InvalidRequestException("The body is empty; send a JSON collection request.");
        var accepted = collections.Create(request);
        return TypedResults.Accepted($"/api/v1/collections/{accepted.Id}", accepted);
    }
}
