using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Web.Configuration;
using BeitV2.Web.Datasets;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
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
            .DisableAntiforgery()
            .WithMetadata(new FormUploadMetadata(typeof(UploadForm)))
            .WithSummary("Upload a zip archive as a dataset (every image is decoded during the import; Storage:MaxDatasetBytes, free space and Storage:MaxDataBytes are checked before writing: 507 when full)")
            .Produces<DatasetInfo>(StatusCodes.Status201Created)
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(413).ProducesProblem(415).ProducesProblem(422)
            .ProducesProblem(StorageBudget.Status507);

        group.MapDelete("/{id}", Delete)
            .WithSummary("Delete an uploaded dataset (409 for built-in datasets and while a queued or running job uses it)")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(401).ProducesProblem(404).ProducesProblem(409);
        return group;
    }

    private static IResult Delete(string id, DatasetCatalog catalog, JobStore jobs)
    {
        var info = catalog.Get(id);
        var users = jobs.List().Where(j => !JobStatus.IsFinished(j.Status) && j.Dataset == info.Id).Select(j => j.Id).ToList();
        if (users.Count > 0 && !info.BuiltIn)
            throw new ConflictException(
                $"Dataset '{info.Id}' is used by {(users.Count == 1 ? "job" : "jobs")} {string.Join(", ", users.Take(10))} (queued or running); " +
                "cancel or wait for them, then delete it.");
        catalog.Delete(info.Id);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> Upload(HttpRequest request, DatasetCatalog catalog, DataDirectory data, StorageBudget storage,
        IOptions<LimitsOptions> limits, IOptions<StorageOptions> storageOptions, CancellationToken ct)
    {
        var max = limits.Value.MaxImportBytes;
        if (request.ContentLength is { } length && length > max)
            throw new TooLargeException($"The upload is {length} bytes; the limit is {max} bytes (Limits:MaxImportBytes).");
        var room = storage.Room();
        if (request.ContentLength is { } declared && declared > room.Bytes) throw room.Insufficient("the upload", declared);

        // The zip streams into its staging file (no copy of the body anywhere else), bounded as it arrives.
        using var upload = await MultipartUpload.ReadAsync(request, "file", _ => Path.Combine(data.Sub("tmp"), $"dataset-{Guid.NewGuid():N}.zip"),
            max, "Limits:MaxImportBytes", room, ct: ct);
        if (upload.StagedFile is null)
            throw new InvalidRequestException("The form has no 'file' part: attach the zip archive as 'file'.");
        var name = upload.Field("name") is { Length: > 0 } n ? n.Trim() : Path.GetFileNameWithoutExtension(upload.FileName);
        if (string.IsNullOrWhiteSpace(name)) name = "dataset";

        // Measured again now that the zip itself takes room.
        var extractRoom = storage.Room();
        var archiveLimits = ArchiveLimits.Default with { MaxTotalBytes = storageOptions.Value.MaxDatasetBytes, AvailableBytes = extractRoom.Bytes };
        try
        {
            RefuseCheckpoints(upload.StagedFile);
            await using var zip = File.OpenRead(upload.StagedFile);
            var info = catalog.Add(zip, name, archiveLimits);
            return TypedResults.Created($"/api/v1/datasets/{info.Id}", info);
        }
        // The exception handler maps every other dataset error; these two answers name the limits and the room that applied here.
        catch (DatasetException e) when (e.Error == DatasetError.TooLarge)
        {
            throw new TooLargeException(
                e.Message + $" Limits: {storageOptions.Value.MaxDatasetBytes} bytes per dataset (Storage:MaxDatasetBytes), " +
                $"{archiveLimits.MaxFileBytes} bytes per file, {archiveLimits.MaxFiles} files.");
        }
        catch (Exception e) when (e is DatasetException { Error: DatasetError.InsufficientStorage } || e is IOException io && StorageBudget.IsDiskFull(io))
        {
            throw extractRoom.Insufficient("the extracted dataset");
        }
    }

    /// <summary>
    /// A model checkpoint is a zip too; datasets never load one (nothing in an archive runs), but a TorchScript
    /// or torch.save archive sent here is a mistake that deserves a clear answer, given before the zip is parsed.
    /// </summary>
    private static void RefuseCheckpoints(string path)
    {
        switch (CheckpointFormat.Detect(path))
        {
            case CheckpointFileKind.TorchScript:
                throw new UnsupportedInputException("This zip is a TorchScript model, not a dataset. " + CheckpointFormat.TorchScriptAdvice);
            case CheckpointFileKind.PyTorchZip or CheckpointFileKind.Safetensors:
                throw new UnsupportedInputException("This file is a model checkpoint, not a dataset: import it with POST /api/v1/models/import.");
        }
    }
}
