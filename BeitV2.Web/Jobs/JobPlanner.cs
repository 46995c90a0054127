using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using static TorchSharp.torch;

namespace BeitV2.Web.Jobs;

/// <summary>The body of <c>POST /api/v1/jobs</c>.</summary>
public sealed record JobRequest(string? Type, string? Name, string? Dataset, string? BaseModel, string? Teacher, JsonElement? Config);

/// <summary>A built trainer with its data and the modules it owns.</summary>
public sealed class TrainingPlan : IDisposable
{
    public required Func<IProgress<TrainingProgress>, CancellationToken, TrainingResult> Run { get; init; }
    public IReadOnlyList<string>? Labels { get; init; }
    public List<IDisposable> Owned { get; } = new();

    public void Dispose()
    {
        for (var i = Owned.Count - 1; i >= 0; i--) Owned[i].Dispose();
        Owned.Clear();
    }
}

/// <summary>
/// Checks job requests against the datasets and the model registry, and turns a job into a trainer:
/// models (from a preset or a registered base model), data loaders and options from the job's config.
/// </summary>
public sealed class JobPlanner(DatasetCatalog datasets, ModelRegistry registry, ComputeDevices devices)
{
    private static readonly Dictionary<string, string[]> BaseKinds = new()
    {
        [JobTypes.Tokenizer] = [ApiModelKinds.Tokenizer],
        [JobTypes.Pretrain] = [ApiModelKinds.Pretrain],
        [JobTypes.LinearProbe] = [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain],
        [JobTypes.FineTune] = [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain],
        [JobTypes.Segmentation] = [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain, ApiModelKinds.Segmenter],
    };

    private static readonly Dictionary<string, string[]> TeacherKinds = new()
    {
        [JobTypes.Tokenizer] = [ApiModelKinds.Teacher, ApiModelKinds.Backbone, ApiModelKinds.Classifier],
        [JobTypes.Pretrain] = [ApiModelKinds.Tokenizer],
    };

    /// <summary>Validates a request (404 unknown dataset or model, 400 wrong kinds or config) and returns the new job's record.</summary>
    public JobRecord Validate(JobRequest request, string id)
    {
        var type = request.Type?.Trim().ToLowerInvariant();
        if (type is null || !JobTypes.All.Contains(type))
            throw new InvalidRequestException($"'type' must be one of {string.Join(", ", JobTypes.All)}.");
        if (type == JobTypes.Pipeline) return ValidatePipeline(request, id);
        if (string.IsNullOrWhiteSpace(request.Dataset))
            throw new InvalidRequestException("'dataset' is required: a dataset id from GET /api/v1/datasets, e.g. \"fashion-mnist\".");
        var settings = JobSettings.Parse(request.Config);
        if (settings.MixedPrecision == ComputePrecision.Fp16 && !devices.TrainingOnCuda)
            throw new InvalidRequestException(
                $"config.mixedPrecision \"fp16\" requires a CUDA device; this server trains on {string.Join(", ", devices.TrainingDevices)}. " +
                "Use \"fp32\" here (\"bf16\" also runs on the CPU, but much slower than fp32 on CPUs without native bfloat16).");
        var dataset = datasets.Get(request.Dataset);
        switch (type)
        {
            case JobTypes.LinearProbe or JobTypes.FineTune when dataset.Kind != "classification":
                throw new InvalidRequestException($"A {type} job needs a classification dataset; '{dataset.Id}' is {dataset.Kind}.");
            case JobTypes.Segmentation when dataset.Kind != "segmentation":
                throw new InvalidRequestException($"A segmentation job needs a segmentation dataset; '{dataset.Id}' is {dataset.Kind}.");
        }
        var trainImages = Math.Min(dataset.Images, settings.MaxTrainImages ?? int.MaxValue);
        if (trainImages < settings.BatchSize)
            throw new InvalidRequestException($"config.batchSize ({settings.BatchSize}) is larger than the {trainImages} training images of '{dataset.Id}'.");

        string? baseModel = null;
        if (!string.IsNullOrWhiteSpace(request.BaseModel))
            baseModel = CheckKind(request.BaseModel, "baseModel", type, BaseKinds[type]).Id;
        else if (type == JobTypes.LinearProbe)
            throw new InvalidRequestException("A linear-probe job needs 'baseModel': the backbone, classifier or pretrain model to probe.");

        string? teacher = null;
        if (TeacherKinds.TryGetValue(type, out var teacherKinds))
        {
            if (!string.IsNullOrWhiteSpace(request.Teacher)) teacher = CheckKind(request.Teacher, "teacher", type, teacherKinds).Id;
            else
            {
                teacher = teacherKinds.Select(registry.DefaultId).FirstOrDefault(d => d is not null)
                          ?? throw new InvalidRequestException(
                              $"A {type} job needs 'teacher' ({string.Join(" or ", teacherKinds)}), and no default one is registered.");
            }
        }
        else if (!string.IsNullOrWhiteSpace(request.Teacher))
            throw new InvalidRequestException($"A {type} job takes no 'teacher'.");

        return new JobRecord
        {
            Id = id, Type = type, Name = string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim(), Dataset = dataset.Id,
            BaseModel = baseModel, Teacher = teacher, Config = request.Config is { ValueKind: JsonValueKind.Object } c ? c.Clone() : null,
            Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow,
            Progress = new JobProgress(0, settings.Epochs, 0, 0, 0, null),
        };
    }

    private JobRecord ValidatePipeline(JobRequest request, string id)
    {
        Pipeline.PipelineSettings.Parse(request.Config);
        if (request.Dataset is { Length: > 0 } d && d != DatasetCatalog.FashionMnist)
            throw new InvalidRequestException($"The pipeline runs on '{DatasetCatalog.FashionMnist}' (and its segmentation scenes), not '{d}'.");
        if (!string.IsNullOrWhiteSpace(request.BaseModel) || !string.IsNullOrWhiteSpace(request.Teacher))
            throw new InvalidRequestException("A pipeline job trains its own teacher, tokenizer and backbone: it takes no 'baseModel' or 'teacher'.");
        var fm = datasets.Get(DatasetCatalog.FashionMnist);
        datasets.Get(DatasetCatalog.FashionMnistSeg);
        return new JobRecord
        {
            Id = id, Type = JobTypes.Pipeline, Name = string.IsNullOrWhiteSpace(request.Name) ? null : request.Name.Trim(), Dataset = fm.Id,
            Config = request.Config is { ValueKind: JsonValueKind.Object } c ? c.Clone() : null,
            Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow,
        };
    }

    private ModelInfo CheckKind(string id, string field, string type, string[] kinds)
    {
        var info = registry.Find(id.Trim()) ?? throw new NotFoundException($"'{field}': no model with id '{id}'.");
        if (!kinds.Contains(info.Kind))
            throw new InvalidRequestException($"'{field}' of a {type} job must be a {string.Join(" or ", kinds)}; '{info.Id}' is a {info.Kind}.");
        return info;
    }

    /// <summary>Builds the trainer of <paramref name="job"/>.</summary>
    public TrainingPlan Build(JobRecord job, string checkpointDirectory, string? resumeFrom)
    {
        var s = JobSettings.Parse(job.Config);
        var plan = new List<IDisposable>();
        try
        {
            // One device per running job (one Hangfire worker per training device); released with the plan.
            var lease = devices.LeaseTrainingDevice();
            plan.Add(lease);
            if (s.MixedPrecision == ComputePrecision.Fp16 && !lease.Device.StartsWith("cuda", StringComparison.Ordinal))
                throw new ArgumentException($"mixedPrecision fp16 requires a CUDA device; this job would train on {lease.Device}.");
            TrainerBase.SeedEverything(s.Seed);
            var built = job.Type switch
            {
                JobTypes.Tokenizer => Tokenizer(job, s, plan),
                JobTypes.Pretrain => Pretrain(job, s, plan),
                JobTypes.LinearProbe => Probe(job, s, plan),
                JobTypes.FineTune => FineTune(job, s, plan),
                JobTypes.Segmentation => Segmentation(job, s, plan),
                _ => throw new InvalidOperationException($"Unknown job type '{job.Type}'."),
            };
            var result = new TrainingPlan
            {
                Labels = built.Labels,
                Run = (progress, ct) => built.Run(Options(s, checkpointDirectory, resumeFrom, lease), progress, ct),
            };
            result.Owned.AddRange(plan);
            return result;
        }
        catch
        {
            for (var i = plan.Count - 1; i >= 0; i--) plan[i].Dispose();
            throw;
        }
    }

    private sealed record Built(Func<Func<TrainerOptions, TrainerOptions>, IProgress<TrainingProgress>, CancellationToken, TrainingResult> Run,
        IReadOnlyList<string>? Labels);

    /// <summary>The common options of every trainer from the job's config.</summary>
    private static Func<TrainerOptions, TrainerOptions> Options(JobSettings s, string checkpointDirectory, string? resumeFrom,
        ComputeDevices.DeviceLease lease) => o => o with
    {
        Epochs = s.Epochs, MaxSteps = s.MaxSteps, Seed = s.Seed,
        LearningRate = s.Lr ?? o.LearningRate, MinLearningRate = Math.Min(s.MinLr ?? o.MinLearningRate, s.Lr ?? o.LearningRate),
        WarmupEpochs = 0, WarmupSteps = s.WarmupSteps > 0 ? s.WarmupSteps : -1,
        WeightDecay = s.WeightDecay ?? o.WeightDecay, ClipGrad = s.ClipGrad ?? o.ClipGrad,
        Device = lease.Device, Gate = lease.Gate, MixedPrecision = s.MixedPrecision, ReportEverySteps = s.ReportEverySteps, ReportInterval = TimeSpan.FromSeconds(1),
        CheckpointDirectory = checkpointDirectory, CheckpointEverySteps = s.CheckpointEverySteps, CheckpointEveryEpochs = 1,
        KeepCheckpoints = s.KeepCheckpoints, ResumeFrom = resumeFrom,
    };

    private LoadedModel LoadModel(string id, List<IDisposable> owned)
    {
        var model = ModelPackage.Load(registry.PackageDirectory(registry.Get(id).Id));
        owned.Add(model);
        return model;
    }

    private (ITrainingData Train, ITrainingData? Validation, IReadOnlyList<string> Classes) Data(JobRecord job, JobSettings s,
        ISampleTransform train, ISampleTransform? eval)
    {
        var (trainSet, valSet) = datasets.Open(job.Dataset, s.MaxTrainImages, s.MaxValImages, s.Seed);
        if (trainSet.Count < s.BatchSize)
            throw new ArgumentException($"The dataset has {trainSet.Count} training images, fewer than the batch size {s.BatchSize}.");
        var trainLoader = new BatchLoader(trainSet, train,
            new BatchLoaderOptions { BatchSize = s.BatchSize, Shuffle = true, Seed = s.Seed, DropLast = true, Workers = s.Workers });
        ITrainingData? validation = null;
        if (eval is not null && valSet is { Count: > 0 } && s.MaxValImages != 0)
            validation = new BatchLoaderTrainingData(new BatchLoader(valSet, eval,
                new BatchLoaderOptions { BatchSize = s.BatchSize, Shuffle = false, Seed = s.Seed, Workers = s.Workers }), fixedEpoch: 0);
        return (new BatchLoaderTrainingData(trainLoader), validation, trainSet.ClassNames);
    }

    private static T Adjust<T>(Func<TrainerOptions, TrainerOptions> common, T options) where T : TrainerOptions => (T)common(options);

    // ---------------------------------------------------------------- stages

    private Built Tokenizer(JobRecord job, JobSettings s, List<IDisposable> owned)
    {
        var teacherModel = LoadModel(job.Teacher!, owned);
        IVqkdTeacher teacher = teacherModel.Module switch
        {
            BeitVisionTransformer vit => new BackboneTeacher(vit),
            IVqkdTeacher t => t,
            var m => throw new ArgumentException($"'{job.Teacher}' ({m.GetType().Name}) cannot serve as a VQ-KD teacher."),
        };
        var (teacherSize, teacherPatch) = teacherModel.Module switch
        {
            BeitVisionTransformer vit => (vit.Config.ImgSize, vit.Config.PatchSize),
            _ => (224, 16),
        };
        VqkdTokenizer tokenizer;
        if (job.BaseModel is not null) tokenizer = LoadModel(job.BaseModel, owned).As<VqkdTokenizer>();
        else
        {
            var size = s.ImageSize ?? teacherSize;
            var config = s.Model switch
            {
                "micro" => VqkdConfig.Micro(decoderOutDim: teacher.OutputDim, nEmbed: s.CodebookSize),
                "small" => VqkdConfig.Small(teacher.OutputDim, s.CodebookSize),
                _ => VqkdConfig.Base1xClip() with { DecoderOutDim = teacher.OutputDim, NEmbed = s.CodebookSize, TeacherModelType = "none" },
            };
            var patch = teacherPatch;
            config = config with
            {
                Encoder = config.Encoder with { ImgSize = size, PatchSize = patch },
                Decoder = config.Decoder with { ImgSize = size / patch },
            };
            tokenizer = new VqkdTokenizer(config);
            owned.Add(tokenizer);
        }
        var imageSize = tokenizer.Config.Encoder.ImgSize;
        var (train, validation, _) = Data(job, s, ClassificationTrainTransform.Tokenizer(imageSize),
            new ClassificationEvalTransform(new EvalTransform(imageSize), normalize: false));
        return new Built((common, progress, ct) =>
            new TokenizerTrainer(tokenizer, teacher, Adjust(common, new TokenizerTrainerOptions())).Run(train, validation, progress, ct), null);
    }

    private Built Pretrain(JobRecord job, JobSettings s, List<IDisposable> owned)
    {
        var tokenizer = LoadModel(job.Teacher!, owned).As<VqkdTokenizer>();
        var encoder = tokenizer.Config.Encoder;
        BeitMim model;
        if (job.BaseModel is not null) model = LoadModel(job.BaseModel, owned).As<BeitMim>();
        else
        {
            var preset = s.Model switch
            {
                "micro" => MimConfig.Micro(tokenizer.VocabSize),
                "small" => MimConfig.Small(tokenizer.VocabSize),
                "tiny" => MimConfig.Tiny(tokenizer.VocabSize),
                _ => MimConfig.Base() with { VocabSize = tokenizer.VocabSize },
            };
            model = new BeitMim(preset with { ImgSize = encoder.ImgSize, PatchSize = encoder.PatchSize });
            owned.Add(model);
        }
        var size = model.Config.ImgSize;
        var grid = model.Config.GridSize;
        var (train, _, _) = Data(job, s, TwoViewTransform.Pretraining(size, encoder.ImgSize), null);
        var minBlock = Math.Clamp(grid * grid / 8, 1, 16);
        return new Built((common, progress, ct) =>
            new PretrainTrainer(model, tokenizer, Adjust(common, new PretrainTrainerOptions { MinMaskPatchesPerBlock = minBlock }))
                .Run(train, null, progress, ct), null);
    }

    private Built Probe(JobRecord job, JobSettings s, List<IDisposable> owned)
    {
        var backbone = LoadModel(job.BaseModel!, owned).Module;
        var size = backbone switch
        {
            BeitVisionTransformer vit => vit.Config.ImgSize,
            BeitMim mim => mim.Config.ImgSize,
            _ => throw new ArgumentException("A linear probe needs a ViT or MIM base model."),
        };
        var (train, validation, classes) = Data(job, s, Classification(size, s), new ClassificationEvalTransform(new EvalTransform(size)));
        return new Built((common, progress, ct) =>
        {
            var options = Adjust(common, new LinearProbeOptions { NumClasses = classes.Count });
            ProbeFeature? asked = s.ProbeFeature switch { "cls" => ProbeFeature.Cls, "mean" => ProbeFeature.Mean, _ => null };
            var trainer = backbone switch
            {
                BeitVisionTransformer vit => new LinearProbeTrainer(vit,
                    options with { Feature = asked ?? (vit.Config.UseMeanPooling ? ProbeFeature.Mean : ProbeFeature.Cls) }),
                _ => new LinearProbeTrainer((BeitMim)backbone, options with { Feature = asked ?? ProbeFeature.Cls }),
            };
            var result = trainer.Run(train, validation, progress, ct);
            if (!ReferenceEquals(result.Model, backbone)) owned.Add(result.Model);
            owned.Add(trainer.Probe);
            return result;
        }, classes);
    }

    private Built FineTune(JobRecord job, JobSettings s, List<IDisposable> owned)
    {
        var classes = datasets.Get(job.Dataset).ClassNames.Count;
        BeitVisionTransformer model;
        if (job.BaseModel is not null)
        {
            var source = LoadModel(job.BaseModel, owned).Module;
            var config = source switch
            {
                BeitVisionTransformer vit => vit.Config with { NumClasses = classes },
                BeitMim mim => mim.Config.ToBackbone(classes),
                _ => throw new ArgumentException("Fine-tuning starts from a ViT or MIM model."),
            };
            model = new BeitVisionTransformer(config);
            owned.Add(model);
            VitCheckpoint.Load(model, source.state_dict(), allowHeadMismatch: true);
        }
        else
        {
            var preset = s.Model switch
            {
                "micro" => VitConfig.Micro(classes),
                "small" => VitConfig.Small(classes),
                "tiny" => VitConfig.Tiny(classes),
                _ => VitConfig.Base(classes),
            };
            model = new BeitVisionTransformer(s.ImageSize is { } size ? preset with { ImgSize = size } : preset);
            owned.Add(model);
        }
        var imageSize = model.Config.ImgSize;
        var (train, validation, names) = Data(job, s, Classification(imageSize, s), new ClassificationEvalTransform(new EvalTransform(imageSize)));
        return new Built((common, progress, ct) =>
        {
            var options = Adjust(common, new FineTuneOptions());
            if (s.LayerDecay is { } ld) options = options with { LayerDecay = ld };
            return new FineTuneTrainer(model, options).Run(train, validation, progress, ct);
        }, names);
    }

    private Built Segmentation(JobRecord job, JobSettings s, List<IDisposable> owned)
    {
        var classes = datasets.Get(job.Dataset).ClassNames.Count;
        if (classes < 1) throw new ArgumentException("The segmentation dataset names no classes.");
        BeitSegmenter model;
        if (job.BaseModel is not null)
        {
            var source = LoadModel(job.BaseModel, owned).Module;
            var config = source switch
            {
                BeitSegmenter seg => seg.Config with { NumClasses = classes },
                BeitVisionTransformer vit => FromBackbone(vit.Config with { NumClasses = 0, ImgSize = s.ImageSize ?? vit.Config.ImgSize }, classes),
                BeitMim mim => FromBackbone(mim.Config.ToBackbone(0) with { ImgSize = s.ImageSize ?? mim.Config.ImgSize }, classes),
                _ => throw new ArgumentException("Segmentation starts from a ViT, MIM or segmenter model."),
            };
            model = new BeitSegmenter(config);
            owned.Add(model);
            var sd = source.state_dict();
            if (source is BeitSegmenter && ((BeitSegmenter)source).Config.NumClasses != classes)
                sd = sd.Where(kv => !kv.Key.StartsWith("decode_head.conv_seg", StringComparison.Ordinal)
                                    && !kv.Key.StartsWith("auxiliary_head.conv_seg", StringComparison.Ordinal))
                    .ToDictionary(kv => kv.Key, kv => kv.Value);
            SegmenterCheckpoint.Load(model, sd);
        }
        else
        {
            var config = s.Model switch
            {
                "micro" => SegmentationConfig.Micro(classes),
                "small" => FromBackbone(VitConfig.Small(0), classes),
                "tiny" => FromBackbone(VitConfig.Tiny(0), classes),
                _ => SegmentationConfig.Base(classes),
            };
            if (s.ImageSize is { } size) config = config with { Backbone = config.Backbone! with { ImgSize = size } };
            model = new BeitSegmenter(config);
            owned.Add(model);
        }
        var imageSize = model.Config.Backbone!.ImgSize;
        var (train, validation, names) = Data(job, s, new SegmentationTrainTransform(imageSize), new SegmentationEvalTransform(imageSize));
        return new Built((common, progress, ct) =>
        {
            var options = Adjust(common, new SegmentationTrainerOptions());
            if (s.LayerDecay is { } ld) options = options with { LayerDecay = ld };
            return new SegmentationTrainer(model, options).Run(train, validation, progress, ct);
        }, names.Count == classes ? names : null);
    }

    private static SegmentationConfig FromBackbone(VitConfig backbone, int classes)
    {
        var d = backbone.Depth;
        if (d < 4) throw new ArgumentException($"A segmentation backbone needs at least 4 blocks (one per neck); the base model has {d}.");
        return SegmentationConfig.Micro(classes) with
        {
            Backbone = backbone,
            OutIndices = new[] { d / 4 - 1, d / 2 - 1, 3 * d / 4 - 1, d - 1 },
        };
    }

    private static ClassificationTrainTransform Classification(int size, JobSettings s) =>
        new(new RandomResizedCrop(size, s.MinCropScale, 1.0), 0.5, null, PixelNormalization.ImageNet);
}
