using System.Text.Json;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace BeitV2.Web.Api;

/// <summary>
/// <c>POST /api/v1/models/import</c>: an official unilm <c>.pth</c> or a timm/our <c>.safetensors</c>
/// file becomes a registered model. The architecture is deduced from the tensor shapes; a
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
        /// <summary>The dataset it was trained on, in words (default: "unknown"); shown with its answers.</summary>
        public string? Dataset { get; set; }
        /// <summary>One line on what it knows, e.g. "ImageNet-1k photos, 1000 everyday object classes" (default: "unknown").</summary>
        public string? Domain { get; set; }
    }

    /// <summary>The new model and how its architecture was determined.</summary>
    public sealed record ImportResponse(ModelInfo Model, IReadOnlyList<string> Notes, IReadOnlyList<string> DefaultedFields);

    public static RouteGroupBuilder MapModelImport(this RouteGroupBuilder group)
    {
        group.MapPost("/import", Import)
            .DisableAntiforgery()
            .WithMetadata(new FormUploadMetadata(typeof(ImportForm)))
            .WithSummary("Import an official BEiT v2 checkpoint (.pth) or a timm .safetensors file")
            .Produces<ImportResponse>(StatusCodes.Status201Created)
            .ProducesProblem(400).ProducesProblem(401).ProducesProblem(413).ProducesProblem(415).ProducesProblem(422).ProducesProblem(429);
        return group;
    }

    private static async Task<IResult> Import(HttpRequest request, ModelRegistry registry, DataDirectory data, StorageBudget storage,
        IOptions<LimitsOptions> limits, ImportGate gate, ILoggerFactory logs, CancellationToken ct)
    {
        if (!request.HasFormContentType)
            throw new UnsupportedInputException("Send multipart/form-data with a 'file' part (the checkpoint) and a 'kind' field.");
        var max = limits.Value.MaxImportBytes;
        if (request.ContentLength is { } length && length > max)
            throw new TooLargeException($"The upload is {length} bytes; the limit is {max} bytes (Limits:MaxImportBytes).");
        var room = storage.Room();
        if (request.ContentLength is { } declared && declared > room.Bytes) throw room.Insufficient("the upload", declared);
        // Taken before the body is read, so concurrent uploads do not each stage a file either.
        using var held = gate.TryEnter()
                         ?? throw new CapacityException("Another model import is in progress; imports run one at a time. Retry shortly.");
        // The checkpoint streams into its staging file (no copy of the body anywhere else), bounded as it arrives.
        // The reader tells .pth from .safetensors by the extension, so the staging file keeps the client's.
        using var form = await MultipartUpload.ReadAsync(request, "file",
            fileName => Path.Combine(data.Sub("tmp"), $"import-{Guid.NewGuid():N}{MultipartUpload.SafeExtension(fileName)}"),
            max, "Limits:MaxImportBytes", room, ["labels"], ct);
        if (form.StagedFile is null)
            throw new InvalidRequestException("The form has no 'file' part: attach the checkpoint as 'file'.");
        var kind = form.Field("kind")?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(kind) || !ApiModelKinds.All.Contains(kind))
            throw new InvalidRequestException($"'kind' must be one of {string.Join(", ", ApiModelKinds.All)}.");
        var overrides = ParseConfig(form.Field("config"));
        ArchitectureDeduction.CheckOverrides(overrides);
        var labels = ReadLabels(form.SmallFile("labels"));
        var fileName = form.FileName ?? "";
        var name = form.Field("name") is { Length: > 0 } n ? n.Trim() : Path.GetFileNameWithoutExtension(fileName);
        var trainedOn = DomainField(form.Field("dataset"), "dataset");
        var description = DomainField(form.Field("domain"), "domain");
        bool? makeDefault = form.Field("makeDefault") is { } md ? bool.TryParse(md, out var b) ? b
            : throw new InvalidRequestException("makeDefault must be true or false.") : null;

        var temp = form.StagedFile;
        try
        {
            if (gate.WhileHeld is { } hook) await hook(ct);
            // The kind check, before anything parses the file: TorchScript would run code when loaded.
            switch (CheckpointFormat.Detect(temp))
            {
                case CheckpointFileKind.TorchScript:
                    throw new UnsupportedInputException(CheckpointFormat.TorchScriptAdvice);
                case CheckpointFileKind.Unknown:
                    throw new UnusableInputException(
                        $"Cannot read '{Path.GetFileName(fileName)}': it is neither a PyTorch state dict (.pth written by torch.save) nor a safetensors file.");
            }
            using var scope = NewDisposeScope();
            var sd = CheckpointKeys.Normalize(StateDictFile.Read(temp));
            DeducedModel deduced;
            try
            {
                deduced = ArchitectureDeduction.Deduce(sd, overrides);
            }
            catch (ArgumentException e)
            {
                throw new InvalidRequestException(e.Message);
            }
            var shape = ModelCatalog.Default[deduced.Kind].Describe(deduced.Config);
            var actualKind = ApiModelKinds.Of(deduced.Kind, shape);
            if (actualKind != kind)
                throw new UnusableInputException($"The file is a {actualKind} ({deduced.Kind}), not a {kind}.");
            // A label per class: a model without a classification or segmentation head takes none.
            // Labels are checked against the model's classes when it has some; a tokenizer's labels (names for
            // its visual words, say) are kept as given.
            var classes = shape.Classes;
            if (labels is not null && classes is { } c && labels.Count != c)
                throw new InvalidRequestException($"The labels file has {labels.Count} lines; the model has {c} classes.");
            if (labels is null && classes == 1000 && kind == ApiModelKinds.Classifier)
                labels = LabelStore.ImageNet1k;
            using var module = ArchitectureDeduction.BuildAndLoad(deduced, sd);
            // What the model knows is what the user says; nothing else is known about an imported checkpoint.
            var domain = new ModelDomain
            {
                Dataset = trainedOn ?? ModelDomain.Unknown, Description = description ?? ModelDomain.Unknown, Classes = labels, InputSize = shape.ImageSize,
            };
            var info = registry.Add(module, name, $"import:{fileName}", labels,
                new ModelLineage(Notes: deduced.Notes), makeDefault, domain: domain);
            logs.CreateLogger("Import").LogInformation("Imported {File} as {Id}", fileName, info.Id);
            return TypedResults.Created($"/api/v1/models/{info.Id}", new ImportResponse(info, deduced.Notes, deduced.DefaultedFields));
        }
        catch (NotSupportedException e)
        {
            throw new UnusableInputException(e.Message);
        }
    }

    private static JsonElement? ParseConfig(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidRequestException("'config' must be a JSON object of constructor keyword arguments.");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidRequestException($"'config' is not valid JSON: {e.Message}");
        }
    }

    private static IReadOnlyList<string>? ReadLabels(byte[]? file)
    {
        if (file is null) return null;
        var text = System.Text.Encoding.UTF8.GetString(file);
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        if (lines.Count == 0) throw new InvalidRequestException("The labels file is empty.");
        return lines;
    }

    /// <summary>A free-text domain field: trimmed, null when empty, at most <see cref="MaxDomainText"/> characters.</summary>
    private static string? DomainField(string? value, string field)
    {
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text)) return null;
        if (text.Length > MaxDomainText)
            throw new InvalidRequestException($"'{field}' is {text.Length} characters long; keep it to one line of at most {MaxDomainText}.");
        return text;
    }

    private const int MaxDomainText = 300;
}
