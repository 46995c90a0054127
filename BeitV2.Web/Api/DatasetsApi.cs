using BeitV2.Ml.Data;
using BeitV2.Web.Configuration;
using BeitV2.Web.Datasets;
using BeitV2.Web.Infrastructure;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Api;

/// <summary><c>/api/v1/datasets</c>: the built-in and uploaded datasets jobs train on.</summary>
public static class DatasetsApi
{
    /// <summary>The upload form, for Swagger.</summary>
    public sealed class UploadForm
    {
        /// <summary>A zip of class folders (<c>class/xxx.jpg</c>), of <c>images/</c> + <c>masks/</c>, or of plain images.</summary>
        public IFormFile? File { get; set; }
        /// <summary>Display name (default: the file name).</summary>
        public string? Name { get; set; }
    }

    public static RouteGroupBuilder MapDatasetsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/datasets").WithTags("Datasets");

        group.MapGet("/", (DatasetCatalog catalog) => TypedResults.Ok(catalog.List()))
            .WithSummary("Built-in and uploaded datasets");

        group.MapGet("/{id}", (string id, DatasetCatalog catalog) => TypedResults.Ok(catalog.Get(id)))
            .WithSummary("One dataset").ProducesProblem(404);

        group.MapPost("/", Upload)
            .AddEndpointFilter<ApiKeyFilter>()
            .DisableAntiforgery()
            .WithMetadata(new FormUploadMetadata(typeof(UploadForm)))
            .WithSummary("Upload a zip archive as a dataset")
            .Produces<DatasetInfo>(StatusCodes.Status201Created)
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(413).ProducesProblem(415).ProducesProblem(422);
        return group;
    }

    private static async Task<IResult> Upload(HttpRequest request, DatasetCatalog catalog, DataDirectory data,
        IOptions<LimitsOptions> limits, CancellationToken ct)
    {
        if (!request.HasFormContentType)
            throw ApiProblemException.UnsupportedMediaType("Send multipart/form-data with a 'file' part (the zip archive).");
        var max = limits.Value.MaxImportBytes;
        if (request.ContentLength is { } length && length > max)
            throw ApiProblemException.TooLarge($"The upload is {length} bytes; the limit is {max} bytes (Limits:MaxImportBytes).");
        var form = await MultipartForms.ReadAsync(request, new FormOptions { MultipartBodyLengthLimit = max }, ct);
        var file = form.Files.GetFile("file")
                   ?? throw ApiProblemException.BadRequest("The form has no 'file' part: attach the zip archive as 'file'.");
        var name = form["name"].FirstOrDefault() is { Length: > 0 } n ? n.Trim() : Path.GetFileNameWithoutExtension(file.FileName);
        if (string.IsNullOrWhiteSpace(name)) name = "dataset";

        var temp = Path.Combine(data.Sub("tmp"), $"dataset-{Guid.NewGuid():N}.zip");
        try
        {
            await using (var target = File.Create(temp))
                await file.CopyToAsync(target, ct);
            await using var zip = File.OpenRead(temp);
            var info = catalog.Add(zip, name);
            return TypedResults.Created($"/api/v1/datasets/{info.Id}", info);
        }
        catch (DatasetException e)
        {
            throw e.Error switch
            {
                DatasetError.TooLarge => ApiProblemException.TooLarge(e.Message),
                DatasetError.InvalidArchive => ApiProblemException.BadRequest(e.Message),
                _ => ApiProblemException.Unprocessable(e.Message),
            };
        }
        finally
        {
            try { File.Delete(temp); } catch (IOException) { }
        }
    }
}
