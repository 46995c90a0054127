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
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Jobs;

/// <summary>A built trainer with its data and the modules it owns.</summary>
public sealed class TrainingPlan : IDisposable
{
    public required Func<IProgress<TrainingProgress>, CancellationToken, TrainingResult> Run { get; init; }
    public IReadOnlyList<string>? Labels { get; init; }
    public List<IDisposable> Owned { get; init; } = new();
    /// <summary>The training data the trainer reads (its loader, augmentation and epoch windows), for inspection.</summary>
    public ITrainingData? TrainData { get; init; }
    /// <summary>The trainer's options as planned from the job's config, for inspection.</summary>
    public TrainerOptions? Options { get; init; }

    public void Dispose()
    {
        for (var i = Owned.Count - 1; i >= 0; i--) Owned[i].Dispose();
        Owned.Clear();
    }
}

/// <summary>
/// Turns a job into a trainer: the models (a named preset of <see cref="ModelPresets"/>, or the trainer's
/// factory on a registered base model), the data loaders, and the trainer's options from the job's config.
/// </summary>
public sealed class JobPlanner(DatasetCatalog datasets, ModelRegistry registry, ComputeDevices devices)
{
    /// <summary>Builds the trainer of <paramref name="job"/>.</summary>
    /// <param name="fence">asked before every checkpoint save and prune (the run's lease on the job); null = always allowed.</param>
    public TrainingPlan Build(JobRecord job, string checkpointDirectory, string? resumeFrom, ICheckpointFence? fence = null)
    {
        var s = JobSettings.Parse(job.Config);
        var owned = new List<IDisposable>();
        try
        {
            // One device per running job (one Hangfire worker per training device); released with the plan.
            var lease = devices.LeaseTrainingDevice();
            owned.Add(lease);
            if (s.MixedPrecision == ComputePrecision.Fp16 && !lease.Device.StartsWith("cuda", StringComparison.Ordinal))
                throw new ArgumentException($"mixedPrecision fp16 requires a CUDA device; this job would train on {lease.Device}.");
            TrainerBase.SeedEverything(s.Seed);
            var run = new RunContext(s, checkpointDirectory, resumeFrom, lease, fence);
            var built = job.Type switch
            {
                JobType.Tokenizer => Tokenizer(job, run, owned),
                JobType.Pretrain => Pretrain(job, run, owned),
                JobType.LinearProbe => Probe(job, run, owned),
                JobType.FineTune => FineTune(job, run, owned),
                JobType.Segmentation => Segmentation(job, run, owned),
                JobType.Teacher => Teacher(job, run, owned),
                _ => throw new InvalidOperationException($"A {job.Type.Name()} job is not a single trainer."),
            };
            return new TrainingPlan { Run = built.Run, Labels = built.Labels, Owned = owned, TrainData = built.Train, Options = built.Options };
        }
        catch
        {
            for (var i = owned.Count - 1; i >= 0; i--) owned[i].Dispose();
            throw;
        }
    }

    private sealed record Built(Func<IProgress<TrainingProgress>, CancellationToken, TrainingResult> Run, IReadOnlyList<string>? Labels,
        ITrainingData Train, TrainerOptions Options);

    /// <summary>The job's settings and where its run trains and checkpoints.</summary>
    private sealed record RunContext(JobSettings Settings, string CheckpointDirectory, string? ResumeFrom, ComputeDevices.DeviceLease Lease,
        ICheckpointFence? Fence)
    {
        /// <summary>A trainer's <paramref name="defaults"/> with the settings every trainer takes from the job's config.</summary>
        public T Options<T>(T defaults) where T : TrainerOptions
        {
            var s = Settings;
            TrainerOptions o = defaults;
            return (T)(o with
            {
                Epochs = s.Epochs, MaxSteps = s.MaxSteps, Seed = s.Seed,
                LearningRate = s.Lr ?? o.LearningRate, MinLearningRate = Math.Min(s.MinLr ?? o.MinLearningRate, s.Lr ?? o.LearningRate),
                WarmupEpochs = 0, WarmupSteps = s.WarmupSteps > 0 ? s.WarmupSteps : -1,
                WeightDecay = s.WeightDecay ?? o.WeightDecay, ClipGrad = s.ClipGrad ?? o.ClipGrad,
                Device = Lease.Device, Gate = Lease.Gate, MixedPrecision = s.MixedPrecision, ReportEverySteps = s.ReportEverySteps,
                ReportInterval = TimeSpan.FromSeconds(1),
                CheckpointDirectory = CheckpointDirectory, CheckpointEverySteps = s.CheckpointEverySteps, CheckpointEveryEpochs = 1,
                KeepCheckpoints = s.KeepCheckpoints, ResumeFrom = ResumeFrom, CheckpointFence = Fence,
            });
        }
    }

    private LoadedModel LoadModel(string id, List<IDisposable> owned) => Own(ModelPackage.Load(registry.PackageDirectory(registry.Get(id).Id)), owned);

    private static T Own<T>(T disposable, List<IDisposable> owned) where T : IDisposable
    {
        owned.Add(disposable);
        return disposable;
    }

    /// <param name="freshItems">
    /// Open the whole training split and let epoch e take its items [e·N, (e+1)·N), N = maxTrainImages
    /// (<see cref="BatchLoaderOptions.EpochSize"/>), instead of a fixed subset of N for every epoch.
    /// </param>
    private (ITrainingData Train, ITrainingData? Validation, IReadOnlyList<string> Classes) Data(JobRecord job, JobSettings s,
        ISampleTransform train, ISampleTransform? eval, bool freshItems = false)
    {
        var (trainSet, valSet) = datasets.Open(job.Dataset, freshItems ? null : s.MaxTrainImages, s.MaxValImages, s.Seed);
        var trainLoader = new BatchLoader(trainSet, train, new BatchLoaderOptions
        {
            BatchSize = s.BatchSize, Shuffle = true, Seed = s.Seed, DropLast = true, Workers = s.Workers,
            EpochSize = freshItems ? s.MaxTrainImages : null,
        });
        if (trainLoader.EpochLength < s.BatchSize)
            throw new ArgumentException($"The dataset has {trainLoader.EpochLength} training images, fewer than the batch size {s.BatchSize}.");
        ITrainingData? validation = null;
        if (eval is not null && valSet is { Count: > 0 } && s.MaxValImages != 0)
            validation = new BatchLoaderTrainingData(new BatchLoader(valSet, eval,
                new BatchLoaderOptions { BatchSize = s.BatchSize, Shuffle = false, Seed = s.Seed, Workers = s.Workers }), fixedEpoch: 0);
        return (new BatchLoaderTrainingData(trainLoader), validation, trainSet.ClassNames);
    }

    // ---------------------------------------------------------------- stages

    private Built Tokenizer(JobRecord job, RunContext run, List<IDisposable> owned)
    {
        var s = run.Settings;
        var (teacher, teacherSize, teacherPatch) = TokenizerTrainer.TeacherOf(LoadModel(job.Teacher!, owned).Module, job.Teacher!);
        var tokenizer = job.BaseModel is not null
            ? LoadModel(job.BaseModel, owned).As<VqkdTokenizer>()
            : Own(TokenizerTrainer.CreateModel(ModelPresets.Vqkd(s.Model, teacher.OutputDim, s.CodebookSize), teacher,
                s.ImageSize ?? teacherSize, teacherPatch), owned);
        var imageSize = tokenizer.Config.Encoder.ImgSize;
        var (train, validation, classes) = Data(job, s, ClassificationTrainTransform.Tokenizer(imageSize),
            new ClassificationEvalTransform(new EvalTransform(imageSize), normalize: false));
        var trainer = new TokenizerTrainer(tokenizer, teacher, run.Options(new TokenizerTrainerOptions { PurityClasses = classes.Count }));
        return new Built((progress, ct) => trainer.Run(train, validation, progress, ct), null, train, trainer.Options);
    }

    private Built Pretrain(JobRecord job, RunContext run, List<IDisposable> owned)
    {
        var s = run.Settings;
        var tokenizer = LoadModel(job.Tokenizer!, owned).As<VqkdTokenizer>();
        var encoder = tokenizer.Config.Encoder;
        var model = job.BaseModel is not null
            ? LoadModel(job.BaseModel, owned).As<BeitMim>()
            : Own(new BeitMim(ModelPresets.Mim(s.Model, tokenizer.VocabSize) with { ImgSize = encoder.ImgSize, PatchSize = encoder.PatchSize }), owned);
        var size = model.Config.ImgSize;
        var grid = model.Config.GridSize;
        var (train, _, _) = Data(job, s, TwoViewTransform.Pretraining(size, encoder.ImgSize), null);
        var minBlock = Math.Clamp(grid * grid / 8, 1, 16);
        var trainer = new PretrainTrainer(model, tokenizer, run.Options(new PretrainTrainerOptions { MinMaskPatchesPerBlock = minBlock }));
        return new Built((progress, ct) => trainer.Run(train, null, progress, ct), null, train, trainer.Options);
    }

    private Built Probe(JobRecord job, RunContext run, List<IDisposable> owned)
    {
        var s = run.Settings;
        var backbone = LoadModel(job.BaseModel!, owned).Module;
        var size = LinearProbeTrainer.InputSize(backbone);
        var (train, validation, classes) = Data(job, s, Classification(size, s), new ClassificationEvalTransform(new EvalTransform(size)));
        var options = run.Options(new LinearProbeOptions { NumClasses = classes.Count });
        ProbeFeature? asked = s.ProbeFeature switch { "cls" => ProbeFeature.Cls, "mean" => ProbeFeature.Mean, _ => null };
        var trainer = LinearProbeTrainer.For(backbone, options, asked);
        Own(trainer.Probe, owned);
        return new Built((progress, ct) =>
        {
            var result = trainer.Run(train, validation, progress, ct);
            if (!ReferenceEquals(result.Model, backbone)) owned.Add(result.Model);
            return result;
        }, classes, train, options);
    }

    private Built FineTune(JobRecord job, RunContext run, List<IDisposable> owned)
    {
        var s = run.Settings;
        var classes = datasets.Get(job.Dataset).ClassNames.Count;
        var options = run.Options(new FineTuneOptions());
        if (s.LayerDecay is { } ld) options = options with { LayerDecay = ld };
        BeitVisionTransformer model;
        if (job.BaseModel is not null)
            model = Own(FineTuneTrainer.CreateModel(LoadModel(job.BaseModel, owned).Module, classes, options), owned);
        else
        {
            var config = ModelPresets.Vit(s.Model, classes);
            if (s.ImageSize is { } size) config = config with { ImgSize = size };
            model = Own(FineTuneTrainer.CreateModel(config, options), owned);
        }
        var imageSize = model.Config.ImgSize;
        var (train, validation, names) = Data(job, s, Classification(imageSize, s), new ClassificationEvalTransform(new EvalTransform(imageSize)));
        var trainer = new FineTuneTrainer(model, options);
        return new Built((progress, ct) => trainer.Run(train, validation, progress, ct), names, train, options);
    }

    private Built Teacher(JobRecord job, RunContext run, List<IDisposable> owned)
    {
        var s = run.Settings;
        var classes = datasets.Get(job.Dataset).ClassNames.Count;
        ConvTeacher model;
        if (job.BaseModel is not null)
            model = LoadModel(job.BaseModel, owned).As<ConvTeacher>();
        else
        {
            var config = (s.Model == ModelPresets.Micro ? ConvTeacherConfig.Micro(classes) : ConvTeacherConfig.Fashion(classes))
                with { ImgSize = s.ImageSize ?? 28 };
            model = Own(new ConvTeacher(config), owned);
        }
        var imageSize = model.Config.ImgSize;
        var (train, validation, names) = Data(job, s, Classification(imageSize, s), new ClassificationEvalTransform(new EvalTransform(imageSize)));
        var trainer = new TeacherTrainer(model, run.Options(new TeacherTrainerOptions()));
        return new Built((progress, ct) => trainer.Run(train, validation, progress, ct), names, train, trainer.Options);
    }

    private Built Segmentation(JobRecord job, RunContext run, List<IDisposable> owned)
    {
        var s = run.Settings;
        var classes = datasets.Get(job.Dataset).ClassNames.Count;
        if (classes < 1) throw new ArgumentException("The segmentation dataset names no classes.");
        var weights = s.LossWeights(classes);
        if (weights is not null && weights.Count != classes)
            throw new ArgumentException($"config.classWeights has {weights.Count} weights; the dataset has {classes} classes: give one per class.");
        var options = run.Options(new SegmentationTrainerOptions()) with { ClassWeights = weights };
        if (s.LayerDecay is { } ld) options = options with { LayerDecay = ld };
        BeitSegmenter model;
        if (job.BaseModel is not null)
            model = Own(SegmentationTrainer.CreateModel(LoadModel(job.BaseModel, owned).Module, classes, s.ImageSize, options, s.OutputStride), owned);
        else
        {
            var config = ModelPresets.Segmenter(s.Model, classes);
            if (s.ImageSize is { } size) config = config with { Backbone = config.Backbone with { ImgSize = size } };
            if (s.OutputStride is { } stride) config = config with { OutputStride = stride };
            model = Own(SegmentationTrainer.CreateModel(config, options), owned);
        }
        var imageSize = model.Config.Backbone.ImgSize;
        var augmentation = new SegmentationTrainTransform(imageSize, s.ScaleRange.Min, s.ScaleRange.Max);
        var (train, validation, names) = Data(job, s, augmentation, new SegmentationEvalTransform(imageSize), freshItems: s.FreshScenes);
        var trainer = new SegmentationTrainer(model, options);
        return new Built((progress, ct) => trainer.Run(train, validation, progress, ct), names.Count == classes ? names : null, train, options);
    }

    private static ClassificationTrainTransform Classification(int size, JobSettings s) =>
        new(new RandomResizedCrop(size, s.MinCropScale, 1.0), 0.5, null, PixelNormalization.ImageNet);
}
