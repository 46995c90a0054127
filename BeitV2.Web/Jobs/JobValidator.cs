using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Precision;
using BeitV2.Web.Datasets;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using BeitV2.Web.Errors;

namespace BeitV2.Web.Jobs;

/// <summary>
/// The body of <c>POST /api/v1/jobs</c>. <paramref name="Teacher"/> is the contract's name of a job's second
/// model: the teacher of a <c>tokenizer</c> job, the tokenizer of a <c>pretrain</c> job.
/// </summary>
public sealed record JobRequest(string? Type, string? Name, string? Dataset, string? BaseModel, string? Teacher, JsonElement? Config);

/// <summary>Checks job requests against the datasets and the model registry and turns a valid one into the new job's record.</summary>
public sealed class JobValidator(DatasetCatalog datasets, ModelRegistry registry, ComputeDevices devices, IPipelineJobs pipelines, ModelEvaluator evaluator)
{
    private static readonly Dictionary<JobType, string[]> BaseKinds = new()
    {
        [JobType.Tokenizer] = [ApiModelKinds.Tokenizer],
        [JobType.Pretrain] = [ApiModelKinds.Pretrain],
        [JobType.LinearProbe] = [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain],
        [JobType.FineTune] = [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain],
        [JobType.Segmentation] = [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain, ApiModelKinds.Segmenter],
        [JobType.Teacher] = [ApiModelKinds.Teacher],
    };

    /// <summary>The kinds the request's <c>teacher</c> may be: a teacher for a tokenizer job, the tokenizer for a pretrain job.</summary>
    private static readonly Dictionary<JobType, string[]> TeacherKinds = new()
    {
        [JobType.Tokenizer] = [ApiModelKinds.Teacher, ApiModelKinds.Backbone, ApiModelKinds.Classifier],
        [JobType.Pretrain] = [ApiModelKinds.Tokenizer],
    };

    /// <summary>Validates a request (404 unknown dataset or model, 400 wrong kinds or config) and returns the new job's record.</summary>
    public JobRecord Validate(JobRequest request, string id)
    {
        if (!JobTypes.TryParse(request.Type?.Trim().ToLowerInvariant(), out var type))
            throw new InvalidRequestException($"'type' must be one of {string.Join(", ", JobTypes.All)}.");
        if (type == JobType.Pipeline) return ValidatePipeline(request, id);
        if (type == JobType.Evaluate) return ValidateEvaluation(request, id);
        if (type == JobType.Index)
            throw new InvalidRequestException("An index job fills a collection: start it with POST /api/v1/collections {\"name\", \"dataset\"}.");
        var name = type.Name();
        if (string.IsNullOrWhiteSpace(request.Dataset))
            throw new InvalidRequestException("'dataset' is required: a dataset id from GET /api/v1/datasets, e.g. \"fashion-mnist\".");
        var settings = JobSettings.Parse(request.Config);
        if (settings.Split is not null) throw new InvalidRequestException($"config.split is for evaluate jobs; a {name} job trains on the training split.");
        if (settings.MaxImages is not null)
            throw new InvalidRequestException($"config.maxImages is for index jobs (collections); a {name} job takes config.maxTrainImages.");
        if (settings.MixedPrecision == ComputePrecision.Fp16 && !devices.TrainingOnCuda)
            throw new InvalidRequestException(
                $"config.mixedPrecision \"fp16\" requires a CUDA device; this server trains on {string.Join(", ", devices.TrainingDevices)}. " +
                "Use \"fp32\" here (\"bf16\" also runs on the CPU, but much slower than fp32 on CPUs without native bfloat16).");
        var dataset = datasets.Get(request.Dataset);
        switch (type)
        {
            case JobType.LinearProbe or JobType.FineTune or JobType.Teacher when dataset.Kind != "classification":
                throw new InvalidRequestException($"A {name} job needs a classification dataset; '{dataset.Id}' is {dataset.Kind}.");
            case JobType.Segmentation when dataset.Kind != "segmentation":
                throw new InvalidRequestException($"A segmentation job needs a segmentation dataset; '{dataset.Id}' is {dataset.Kind}.");
        }
        var trainImages = Math.Min(dataset.Images, settings.MaxTrainImages ?? int.MaxValue);
        if (trainImages < settings.BatchSize)
            throw new InvalidRequestException($"config.batchSize ({settings.BatchSize}) is larger than the {trainImages} training images of '{dataset.Id}'.");

        ModelInfo? baseInfo = null;
        if (!string.IsNullOrWhiteSpace(request.BaseModel))
            baseInfo = CheckKind(request.BaseModel, "baseModel", name, BaseKinds[type]);
        else if (type == JobType.LinearProbe)
            throw new InvalidRequestException("A linear-probe job needs 'baseModel': the backbone, classifier or pretrain model to probe.");
        var baseModel = baseInfo?.Id;
        if (type == JobType.Segmentation) CheckSegmentation(settings, dataset, baseInfo);

        string? teacher = null;
        if (TeacherKinds.TryGetValue(type, out var teacherKinds))
        {
            if (!string.IsNullOrWhiteSpace(request.Teacher)) teacher = CheckKind(request.Teacher, "teacher", name, teacherKinds).Id;
            else
            {
                teacher = teacherKinds.Select(registry.DefaultId).FirstOrDefault(d => d is not null)
                          ?? throw new InvalidRequestException(
                              $"A {name} job needs 'teacher' ({string.Join(" or ", teacherKinds)}), and no default one is registered.");
            }
        }
        else if (!string.IsNullOrWhiteSpace(request.Teacher))
            throw new InvalidRequestException($"A {name} job takes no 'teacher'.");

        return new JobRecord
        {
            Id = id, Type = type, Name = string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim(), Dataset = dataset.Id,
            BaseModel = baseModel,
            Teacher = type == JobType.Tokenizer ? teacher : null,
            Tokenizer = type == JobType.Pretrain ? teacher : null,
            Config = request.Config is { ValueKind: JsonValueKind.Object } c ? c.Clone() : null,
            Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow,
            Progress = new JobProgress(0, settings.Epochs, 0, 0, 0, null),
        };
    }

    private JobRecord ValidatePipeline(JobRequest request, string id)
    {
        pipelines.CheckConfig(request.Config);
        if (request.Dataset is { Length: > 0 } d && d != DatasetCatalog.FashionMnist)
            throw new InvalidRequestException($"The pipeline runs on '{DatasetCatalog.FashionMnist}' (and its segmentation scenes), not '{d}'.");
        if (!string.IsNullOrWhiteSpace(request.BaseModel) || !string.IsNullOrWhiteSpace(request.Teacher))
            throw new InvalidRequestException("A pipeline job trains its own teacher, tokenizer and backbone: it takes no 'baseModel' or 'teacher'.");
        var fm = datasets.Get(DatasetCatalog.FashionMnist);
        datasets.Get(DatasetCatalog.FashionMnistSeg);
        return new JobRecord
        {
            Id = id, Type = JobType.Pipeline, Name = string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim(), Dataset = fm.Id,
            Config = request.Config is { ValueKind: JsonValueKind.Object } c ? c.Clone() : null,
            Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    /// <summary>The segmentation keys that depend on the dataset or the model: one class weight per class, output stride 2 only with 4 px patches.</summary>
    private static void CheckSegmentation(JobSettings settings, DatasetInfo dataset, ModelInfo? baseModel)
    {
        if (settings.ClassWeights is { Count: var n } && n != dataset.Classes)
            throw new InvalidRequestException(
                $"config.classWeights has {n} weights, but '{dataset.Id}' has {dataset.Classes} classes ({string.Join(", ", dataset.ClassNames)}): " +
                "give one weight per class, in that order.");
        if (settings.OutputStride == 2)
        {
            var patch = baseModel?.PatchSize ?? ModelPresets.Segmenter(settings.Model, numClasses: 1).Backbone.PatchSize;
            if (patch != 4)
                throw new InvalidRequestException(
                    $"config.outputStride 2 needs a model with 4 px patches; {(baseModel is null ? $"the '{settings.Model}' preset" : $"'{baseModel.Id}'")} " +
                    $"has {patch} px patches. Use outputStride 4, or a model with 4 px patches (the '{ModelPresets.Small}' preset).");
        }
    }

    /// <summary>
    /// An <c>evaluate</c> job: a classifier or segmenter (<c>baseModel</c>: an id, a name or <c>default:KIND</c>), scored on
    /// <c>dataset</c> (default: Fashion-MNIST for its kind). The record keeps the resolved ids, so the job scores what was asked
    /// even when the defaults change before it runs.
    /// </summary>
    private JobRecord ValidateEvaluation(JobRequest request, string id)
    {
        if (request.Config is { ValueKind: JsonValueKind.Object } config)
            foreach (var key in config.EnumerateObject().Select(p => p.Name))
                if (!JobSettings.EvaluateKeys.Contains(key))
                    throw new InvalidRequestException(
                        $"config.{key} does not apply to an evaluate job, which trains nothing; it takes {string.Join(", ", JobSettings.EvaluateKeys)}.");
        var settings = JobSettings.Parse(request.Config);
        if (settings.MaxValImages == 0) throw new InvalidRequestException("config.maxValImages is the number of images an evaluate job scores: at least 1.");
        if (!string.IsNullOrWhiteSpace(request.Teacher)) throw new InvalidRequestException("An evaluate job takes no 'teacher'.");
        if (string.IsNullOrWhiteSpace(request.BaseModel))
            throw new InvalidRequestException(
                "An evaluate job needs 'baseModel': the classifier or segmenter to score (a model id, or default:classifier / default:segmenter).");
        var target = evaluator.Check(request.BaseModel, request.Dataset, settings.Split ?? ModelEvaluator.Test, settings.Seed);
        return new JobRecord
        {
            Id = id, Type = JobType.Evaluate, Name = string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim(),
            Dataset = target.Dataset.Id, BaseModel = target.Model.Id,
            Config = request.Config is { ValueKind: JsonValueKind.Object } c ? c.Clone() : null,
            Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow,
            Progress = new JobProgress(0, 1, 0, 0, 0, null),
        };
    }

    private ModelInfo CheckKind(string id, string field, string type, string[] kinds)
    {
        var info = registry.Find(id.Trim()) ?? throw new NotFoundException($"'{field}': no model with id '{id}'.");
        if (!kinds.Contains(info.Kind))
            throw new InvalidRequestException($"'{field}' of a {type} job must be a {string.Join(" or ", kinds)}; '{info.Id}' is a {info.Kind}.");
        return info;
    }
}
