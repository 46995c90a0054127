using System.Diagnostics;
using System.Globalization;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using TorchSharp;

namespace BeitV2.Web.Evaluation;

/// <summary>A checked evaluation: the model, the dataset and split it is scored on, and what qualifies the numbers.</summary>
public sealed record EvaluationTarget(ModelInfo Model, DatasetInfo Dataset, string Split, IReadOnlyList<string> Notes);

/// <summary>How an evaluation reads its images.</summary>
/// <param name="MaxImages">score at most this many images of the split (a seeded subset); null = all of them.</param>
public sealed record EvaluationSettings(int? MaxImages = null, int BatchSize = 32, int Seed = 0, int Workers = 2);

/// <summary>
/// Scores a registered classifier or segmenter on a dataset split: the <c>evaluate</c> job and the <c>evaluate</c> command.
/// The images go through the model's own preprocessing (its manifest) with the evaluation transforms the training jobs
/// validate with, and the scores are those of the trainers' validation (<see cref="ClassificationEvaluation"/>,
/// <see cref="SegmentationEvaluation"/>), so a re-measured model reproduces the number its training job reported.
/// </summary>
public sealed class ModelEvaluator(DatasetCatalog datasets, ModelRegistry registry, ComputeDevices devices)
{
    public const string Test = "test";
    public const string Train = "train";
    /// <summary>The prefix that names the default model of a kind instead of a model id: <c>default:classifier</c>.</summary>
    public const string DefaultPrefix = "default:";

    /// <summary>
    /// A model by id, by <c>default:KIND</c> (the registry's default of that kind) or by its exact name (case-insensitive)
    /// when one model has it.
    /// </summary>
    /// <exception cref="NotFoundException">no such model, or no default of the kind.</exception>
    /// <exception cref="InvalidRequestException">an unknown kind, or a name several models share.</exception>
    public ModelInfo ResolveModel(string reference)
    {
        var r = reference.Trim();
        if (r.StartsWith(DefaultPrefix, StringComparison.Ordinal))
        {
            var kind = r[DefaultPrefix.Length..];
            if (!ApiModelKinds.All.Contains(kind))
                throw new InvalidRequestException($"'{r}' names no kind of model; use default:{ApiModelKinds.Classifier} or default:{ApiModelKinds.Segmenter}.");
            var id = registry.DefaultId(kind) ?? throw new NotFoundException($"No default {kind} is registered (GET /api/v1/models lists the models).");
            return registry.Get(id);
        }
        if (registry.Find(r) is { } byId) return byId;
        var named = registry.List().Where(m => string.Equals(m.Name, r, StringComparison.OrdinalIgnoreCase)).ToList();
        return named.Count switch
        {
            1 => named[0],
            0 => throw new NotFoundException(
                $"No model with the id or name '{r}'. GET /api/v1/models lists the models; default:{ApiModelKinds.Classifier} names the default classifier."),
            _ => throw new InvalidRequestException($"{named.Count} models are named '{r}' ({string.Join(", ", named.Select(m => m.Id))}); give one's id."),
        };
    }

    /// <summary>
    /// Checks that <paramref name="model"/> can be scored on <paramref name="dataset"/> (null: Fashion-MNIST for the kind,
    /// when the model's classes are its classes) and returns what is scored.
    /// </summary>
    /// <exception cref="NotFoundException">no such model or dataset.</exception>
    /// <exception cref="InvalidRequestException">a model that is neither classifier nor segmenter, a dataset of the other kind or with
    /// another number of classes, no default dataset for the model, an unknown split or one the dataset does not have.</exception>
    public EvaluationTarget Check(string model, string? dataset, string split, int seed = 0)
    {
        if (split is not (Test or Train)) throw new InvalidRequestException($"The split must be \"{Test}\" or \"{Train}\", not \"{split}\".");
        var info = ResolveModel(model);
        var datasetKind = info.Kind switch
        {
            ApiModelKinds.Classifier => "classification",
            ApiModelKinds.Segmenter => "segmentation",
            _ => throw new InvalidRequestException(
                $"'{info.Id}' is a {info.Kind}; evaluation scores a classifier (accuracy, confusion matrix) or a segmenter (mIoU). " +
                "A backbone or pretrain model has no classes to score: fine-tune or probe it first (job types finetune, linear-probe, segmentation)."),
        };
        var classes = info.Classes ?? 0;
        var labels = registry.Labels(info.Id);
        DatasetInfo set;
        if (string.IsNullOrWhiteSpace(dataset))
        {
            var fallback = info.Kind == ApiModelKinds.Classifier ? DatasetCatalog.FashionMnist : DatasetCatalog.FashionMnistSeg;
            set = datasets.Find(fallback) ?? throw new InvalidRequestException(
                $"No dataset given, and '{fallback}' (the default for a {info.Kind}) is not available on this server; name a {datasetKind} dataset.");
            if (set.Classes != classes || (labels is { Count: > 0 } && !labels.SequenceEqual(set.ClassNames)))
                throw new InvalidRequestException(
                    $"No dataset given, and the classes of '{info.Id}' ({Describe(labels, classes)}) are not those of '{fallback}'; " +
                    $"name the {datasetKind} dataset the model was trained for.");
        }
        else set = datasets.Get(dataset.Trim());
        if (set.Kind != datasetKind)
            throw new InvalidRequestException($"A {info.Kind} is scored on a {datasetKind} dataset; '{set.Id}' is {set.Kind}.");
        if (set.Classes != classes)
            throw new InvalidRequestException(
                $"'{info.Id}' predicts {classes} classes but '{set.Id}' has {set.Classes} ({Describe(set.ClassNames, set.Classes)}): " +
                "its scores on this dataset would mean nothing. Evaluate it on the dataset it was trained for.");
        if (split == Test && datasets.Open(set.Id, 1, 1, seed).Validation is null)
            throw new InvalidRequestException(
                $"'{set.Id}' has no held-out images (an uploaded dataset keeps 10 % for testing from 10 images on); evaluate on the \"{Train}\" split.");
        var notes = new List<string>();
        if (labels is { Count: > 0 } && set.ClassNames.Count == set.Classes && !labels.SequenceEqual(set.ClassNames))
            notes.Add($"The model's labels ({string.Join(", ", labels)}) differ from the dataset's classes ({string.Join(", ", set.ClassNames)}); " +
                      "model class i is scored against dataset class i.");
        return new EvaluationTarget(info, set, split, notes);
    }

    /// <summary>
    /// Scores the model on the split, on a training device (leased for the pass, as a training job leases one), reporting
    /// progress (batches as steps, running scores as metrics) at most about once a second.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired (after the current batch).</exception>
    /// <exception cref="InvalidOperationException">the model's preprocessing cannot be applied.</exception>
    public EvaluationResult Run(EvaluationTarget target, EvaluationSettings settings, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        using var lease = devices.LeaseTrainingDevice();
        var device = torch.device(lease.Device);
        var (trainSet, testSet) = target.Split == Train
            ? datasets.Open(target.Dataset.Id, settings.MaxImages, 1, settings.Seed)
            : datasets.Open(target.Dataset.Id, 1, settings.MaxImages, settings.Seed);
        var images = target.Split == Train ? trainSet : testSet ?? throw new InvalidOperationException($"'{target.Dataset.Id}' has no held-out images.");
        if (images.Count == 0) throw new InvalidOperationException($"The {target.Split} split of '{target.Dataset.Id}' has no images.");

        using var loaded = ModelPackage.Load(registry.PackageDirectory(target.Model.Id), device);
        loaded.Module.eval();
        var notes = target.Notes.ToList();
        var (transform, describe, note) = EvaluationTransform(loaded);
        if (note is not null) notes.Add(note);
        var data = new BatchLoaderTrainingData(new BatchLoader(images, transform,
            new BatchLoaderOptions { BatchSize = settings.BatchSize, Shuffle = false, Seed = settings.Seed, Workers = settings.Workers }), fixedEpoch: 0);

        var report = new Reporter(progress, data.BatchesPerEpoch, images.Count,
            $"scoring {target.Model.Id} on {target.Split} split of {target.Dataset.Id}: {images.Count} images, {describe}");
        var clock = Stopwatch.StartNew();
        var result = loaded.Module switch
        {
            BeitVisionTransformer vit => Classify(vit, data, device, lease, report, cancellationToken),
            BeitSegmenter seg => Segment(seg, data, device, lease, report, cancellationToken),
            _ => throw new InvalidOperationException($"A {loaded.Kind} model cannot be scored; evaluation takes classifiers and segmenters."),
        };
        cancellationToken.ThrowIfCancellationRequested();
        var names = target.Dataset.ClassNames.Count == result.PerClass.Count ? target.Dataset.ClassNames
            : registry.Labels(target.Model.Id) is { } labels && labels.Count == result.PerClass.Count ? labels
            : Enumerable.Range(0, result.PerClass.Count).Select(i => $"class {i}").ToList();
        result = result with
        {
            Model = target.Model.Id, ModelName = target.Model.Name, Dataset = target.Dataset.Id, Split = target.Split, Seed = settings.Seed,
            Preprocessing = describe, Classes = names, PerClass = [.. result.PerClass.Select((c, i) => c with { Name = names[i] })],
            Notes = notes, Seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
        };
        report.Finished(result.Headline());
        return result;
    }

    /// <summary>
    /// The evaluation transform of a loaded classifier or segmenter from its manifest's preprocessing, as the training jobs
    /// validate with and as the model is served, with a description of it and a note when the manifest asks for something
    /// the transform cannot do.
    /// </summary>
    /// <exception cref="InvalidOperationException">the model's preprocessing cannot be applied.</exception>
    internal static (ISampleTransform Transform, string Describe, string? Note) EvaluationTransform(LoadedModel loaded)
    {
        var preprocessing = Preprocessing(loaded);
        if (loaded.Module is BeitSegmenter)
        {
            // SegmentationTrainer validates on whole scenes resized to the model's size (SegmentationEvalTransform), which is
            // also how a segmenter is served (its manifest's "squash").
            return (new SegmentationEvalTransform(preprocessing.InputSize, preprocessing.Normalization),
                $"whole image resized to {preprocessing.InputSize}x{preprocessing.InputSize} px (bicubic), masks by nearest neighbour; {Stats(preprocessing)}",
                preprocessing.CropMode == ModelPreprocessing.Squash ? null
                    : $"The manifest asks for a '{preprocessing.CropMode}' crop; the masks must cover the whole scene, so the scene was resized whole.");
        }
        var eval = new EvalTransform(preprocessing.InputSize, preprocessing.CropPct, preprocessing.Normalization);
        var squash = preprocessing.CropMode == ModelPreprocessing.Squash;
        return (new ClassificationEvalTransform(eval, fullResize: squash), (squash
            ? $"whole image resized to {eval.InputSize}x{eval.InputSize} px (bicubic)"
            : $"shorter side resized to {eval.ResizeTo} px (bicubic), centre crop {eval.InputSize}x{eval.InputSize}") + $"; {Stats(preprocessing)}", null);
    }

    private static EvaluationResult Classify(BeitVisionTransformer model, ITrainingData data, torch.Device device, ComputeDevices.DeviceLease lease,
        Reporter report, CancellationToken ct)
    {
        var m = ClassificationEvaluation.Evaluate(data, device, model.forward, model.Config.NumClasses, ct, lease.Gate,
            (n, running) => report.Batch(n, () => new Dictionary<string, double> { ["accuracy"] = running.Accuracy }));
        var support = m.Support;
        var accuracy = m.ClassAccuracy;
        return Empty(ApiModelKinds.Classifier, m.Samples) with
        {
            Accuracy = Value(m.Accuracy), Top5Accuracy = Value(m.Top5Accuracy), Loss = Value(m.MeanLoss),
            ConfusionMatrix = m.Confusion,
            PerClass = [.. Enumerable.Range(0, m.NumClasses).Select(k => new ClassScore("", support[k], null, Value(accuracy[k]), null))],
        };
    }

    private static EvaluationResult Segment(BeitSegmenter model, ITrainingData data, torch.Device device, ComputeDevices.DeviceLease lease,
        Reporter report, CancellationToken ct)
    {
        long images = 0;
        var m = SegmentationEvaluation.Evaluate(model, data, device, ct, lease.Gate, (n, running) =>
        {
            images += n;
            report.Batch(n, () => new Dictionary<string, double> { ["mIoU"] = running.MeanIoU, ["aAcc"] = running.PixelAccuracy });
        });
        var iou = m.ClassIoU;
        var accuracy = m.ClassAccuracy;
        var pixels = m.LabelPixels;
        return Empty(ApiModelKinds.Segmenter, images) with
        {
            MeanIoU = Value(m.MeanIoU), PixelAccuracy = Value(m.PixelAccuracy), MeanClassAccuracy = Value(m.MeanAccuracy),
            PerClass = [.. Enumerable.Range(0, m.NumClasses).Select(k => new ClassScore("", null, (long)pixels[k], Value(accuracy[k]), Value(iou[k])))],
        };
    }

    private static EvaluationResult Empty(string kind, long images) => new()
    {
        Model = "", Kind = kind, Dataset = "", Split = "", Images = images, Preprocessing = "", Classes = [], PerClass = [],
    };

    private static double? Value(double v) => double.IsFinite(v) ? v : null;

    /// <summary>The manifest's preprocessing (the kind's default for packages written before it existed), checked against the model.</summary>
    private static ModelPreprocessing Preprocessing(LoadedModel loaded)
    {
        var p = loaded.Manifest.Preprocessing ?? ModelCatalog.Default.DefaultPreprocessing(loaded.Module)
            ?? throw new InvalidOperationException($"A {loaded.Kind} model has no input preprocessing.");
        var size = loaded.Module switch
        {
            BeitVisionTransformer vit => vit.Config.ImgSize,
            BeitSegmenter seg => seg.Config.Backbone.ImgSize,
            _ => p.InputSize,
        };
        try
        {
            p.Validate(size);
        }
        catch (CheckpointException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
        return p;
    }

    private static string Stats(ModelPreprocessing p) => string.Create(CultureInfo.InvariantCulture,
        $"mean ({string.Join(", ", p.Mean.Select(v => v.ToString("0.###", CultureInfo.InvariantCulture)))}), " +
        $"std ({string.Join(", ", p.Std.Select(v => v.ToString("0.###", CultureInfo.InvariantCulture)))})");

    private static string Describe(IReadOnlyList<string>? names, int count) =>
        names is { Count: > 0 } ? (names.Count > 12 ? string.Join(", ", names.Take(12)) + ", …" : string.Join(", ", names)) : $"{count} unnamed";

    /// <summary>Batches as the job's steps: a report on the first and last batch and at most one a second between.</summary>
    private sealed class Reporter(IProgress<TrainingProgress>? progress, int batches, int images, string startLine)
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private TimeSpan lastSent = TimeSpan.Zero;
        private long done, seen;
        private bool started;

        public void Batch(int count, Func<Dictionary<string, double>> metrics)
        {
            done++;
            seen += count;
            if (progress is null) return;
            var now = clock.Elapsed;
            if (done != 1 && done != batches && now - lastSent < TimeSpan.FromSeconds(1)) return;
            lastSent = now;
            var perSecond = seen / Math.Max(now.TotalSeconds, 1e-3);
            double? eta = done > 0 ? (images - seen) / perSecond : null;
            Send(TrainingEvent.Step, metrics(), perSecond, eta);
        }

        public void Finished(Dictionary<string, double> metrics) =>
            Send(TrainingEvent.Evaluation, metrics, seen / Math.Max(clock.Elapsed.TotalSeconds, 1e-3), 0);

        private void Send(TrainingEvent e, Dictionary<string, double> metrics, double perSecond, double? eta)
        {
            IReadOnlyList<string> log = started ? [] : [startLine];
            started = true;
            progress!.Report(new TrainingProgress("evaluate", e, 0, 1, done, batches, double.NaN, double.NaN, perSecond, eta, metrics, log));
        }
    }
}
