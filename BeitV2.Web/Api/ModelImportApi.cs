using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace BeitV2.Web.Api;

/// <summary>
/// <c>POST /api/v1/models/import</c>: an official unilm <c>.pth</c> or a timm/our <c>.safetensors</c>
/// file becomes a registered model. The architecture is inferred from the tensor shapes; a
/// <c>config</c> JSON (official keyword names) overrides what the weights cannot tell.
/// </summary>
public static class ModelImportApi
{
    /// <summary>The import form, for Swagger.</summary>
    public sealed class ImportForm
    {
        /// <summary>The checkpoint (.pth or .safetensors).</summary>
        public IFormFile? File { get; set; }
        /// <summary>tokenizer, backbone, classifier, segmenter, pretrain or teacher.</summary>
        public string? Kind { get; set; }
        /// <summary>Display name (default: the file name).</summary>
        public string? Name { get; set; }
        /// <summary>Class names, one per line (classifiers and segmenters).</summary>
        public IFormFile? Labels { get; set; }
        /// <summary>JSON object overriding inferred config values, e.g. {"num_heads": 12}.</summary>
        public string? Config { get; set; }
        /// <summary>Make it the default model of its kind.</summary>
        public bool? MakeDefault { get; set; }
    }

    /// <summary>The new model and how its architecture was determined.</summary>
    public sealed record ImportResponse(ModelInfo Model, IReadOnlyList<string> Notes, IReadOnlyList<string> DefaultedFields);

    public static RouteGroupBuilder MapModelImport(this RouteGroupBuilder group)
    {
        group.MapPost("/import", Import)
            .AddEndpointFilter<ApiKeyFilter>()
            .DisableAntiforgery()
            .WithMetadata(new FormUploadMetadata(typeof(ImportForm)))
            .WithSummary("Import an official BEiT v2 checkpoint (.pth) or a timm .safetensors file")
            .Produces<ImportResponse>(StatusCodes.Status201Created)
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(413).ProducesProblem(415).ProducesProblem(422);
        return group;
    }

    private static async Task<IResult> Import(HttpRequest request, ModelRegistry registry, DataDirectory data,
        IOptions<LimitsOptions> limits, ILoggerFactory logs, CancellationToken ct)
    {
        if (!request.HasFormContentType)
            throw ApiProblemException.UnsupportedMediaType("Send multipart/form-data with a 'file' part (the checkpoint) and a 'kind' field.");
        var max = limits.Value.MaxImportBytes;
        if (request.ContentLength is { } length && length > max)
            throw ApiProblemException.TooLarge($"The upload is {length} bytes; the limit is {max} bytes (Limits:MaxImportBytes).");
        var form = await MultipartForms.ReadAsync(request, new FormOptions { MultipartBodyLengthLimit = max }, ct);
        var file = form.Files.GetFile("file")
                   ?? throw ApiProblemException.BadRequest("The form has no 'file' part: attach the checkpoint as 'file'.");
        var kind = form["kind"].FirstOrDefault()?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(kind) || !ApiModelKinds.All.Contains(kind))
            throw ApiProblemException.BadRequest($"'kind' must be one of {string.Join(", ", ApiModelKinds.All)}.");
        var overrides = ParseConfig(form["config"].FirstOrDefault());
        var labels = await ReadLabelsAsync(form.Files.GetFile("labels"), ct);
        var name = form["name"].FirstOrDefault() is { Length: > 0 } n ? n.Trim() : Path.GetFileNameWithoutExtension(file.FileName);
        bool? makeDefault = form["makeDefault"].FirstOrDefault() is { } md ? bool.TryParse(md, out var b) ? b
            : throw ApiProblemException.BadRequest("makeDefault must be true or false.") : null;

        var temp = Path.Combine(data.Sub("tmp"), $"import-{Guid.NewGuid():N}{Path.GetExtension(file.FileName)}");
        try
        {
            await using (var target = File.Create(temp))
                await file.CopyToAsync(target, ct);
            using var scope = NewDisposeScope();
            var sd = CheckpointKeys.Normalize(StateDictFile.Read(temp));
            InferredModel inferred;
            try
            {
                inferred = ArchitectureInference.Infer(sd, overrides);
            }
            catch (ArgumentException e)
            {
                throw ApiProblemException.BadRequest(e.Message);
            }
            var actualKind = ApiKindOf(inferred);
            if (actualKind != kind)
                throw ApiProblemException.Unprocessable($"The file is a {actualKind} ({inferred.Kind}), not a {kind}.");
            var classes = ClassCount(inferred);
            if (labels is not null && classes is { } c && labels.Count != c)
                throw ApiProblemException.BadRequest($"The labels file has {labels.Count} lines; the model has {c} classes.");
            if (labels is null && classes == 1000 && kind == ApiModelKinds.Classifier)
                labels = LabelStore.ImageNet1k;
            using var module = ArchitectureInference.BuildAndLoad(inferred, sd);
            var info = registry.Add(module, name, $"import:{Path.GetFileName(file.FileName)}", labels,
                new ModelLineage(Notes: inferred.Notes), makeDefault);
            logs.CreateLogger("Import").LogInformation("Imported {File} as {Id}", file.FileName, info.Id);
            return TypedResults.Created($"/api/v1/models/{info.Id}", new ImportResponse(info, inferred.Notes, inferred.DefaultedFields));
        }
        catch (NotSupportedException e)
        {
            throw ApiProblemException.Unprocessable(e.Message);
        }
        finally
        {
            try { File.Delete(temp); } catch (IOException) { }
        }
    }

    private static string ApiKindOf(InferredModel inferred) => inferred.Kind switch
    {
        ModelKind.VitCls => ClassCount(inferred) > 0 ? ApiModelKinds.Classifier : ApiModelKinds.Backbone,
        ModelKind.Mim => ApiModelKinds.Pretrain,
        ModelKind.Vqkd => ApiModelKinds.Tokenizer,
        ModelKind.Segmenter => ApiModelKinds.Segmenter,
        _ => ApiModelKinds.Teacher,
    };

    private static int? ClassCount(InferredModel inferred) => inferred.ConfigJson.TryGetProperty("num_classes", out var n) && n.ValueKind == JsonValueKind.Number
        ? n.GetInt32() : null;

    private static JsonElement? ParseConfig(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw ApiProblemException.BadRequest("'config' must be a JSON object of constructor keyword arguments.");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ApiProblemException.BadRequest($"'config' is not valid JSON: {e.Message}");
        }
    }

    private static async Task<IReadOnlyList<string>?> ReadLabelsAsync(IFormFile? file, CancellationToken ct)
    {
        if (file is null) return null;
        using var reader = new StreamReader(file.OpenReadStream());
        var text = await reader.ReadToEndAsync(ct);
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        if (lines.Count == 0) throw ApiProblemException.BadRequest("The labels file is empty.");
        return lines;
    }
}
