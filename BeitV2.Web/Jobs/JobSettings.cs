using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Precision;
using BeitV2.Web.Errors;

namespace BeitV2.Web.Jobs;

/// <summary>
/// A job's <c>config</c> object, checked strictly (unknown keys and out-of-range values are 400s).
/// The defaults are tiny: one epoch of a micro model, so a job on a laptop CPU takes seconds to minutes.
/// </summary>
public sealed record JobSettings
{
    public int Epochs { get; init; } = 1;
    public long? MaxSteps { get; init; }
    public int BatchSize { get; init; } = 16;
    public double? Lr { get; init; }
    public double? MinLr { get; init; }
    public int WarmupSteps { get; init; }
    public int? ImageSize { get; init; }
    /// <summary>The size of the models a job builds from scratch: one of <see cref="ModelPresets.Names"/>.</summary>
    public string Model { get; init; } = ModelPresets.Micro;
    public int Seed { get; init; }
    public int? MaxTrainImages { get; init; }
    public int? MaxValImages { get; init; } = 1000;
    public int CheckpointEverySteps { get; init; }
    /// <summary>How many of the newest checkpoints the job keeps (at most <see cref="MaxKeepCheckpoints"/>).</summary>
    public int KeepCheckpoints { get; init; } = 3;
    /// <summary>A checkpoint of a base model is about 1 GB with its optimiser state: keeping more than this many fills a disk, not a need.</summary>
    public const int MaxKeepCheckpoints = 20;
    public int ReportEverySteps { get; init; } = 10;
    public int CodebookSize { get; init; } = 64;
    public double? LayerDecay { get; init; }
    public double? WeightDecay { get; init; }
    public double? ClipGrad { get; init; }
    public double MinCropScale { get; init; } = 0.35;
    public int Workers { get; init; } = 2;
    /// <summary>Linear probe: "cls" or "mean" token feature; null = the model's own pooling.</summary>
    public string? ProbeFeature { get; init; }
    /// <summary>"fp32" (also "none" or false), "bf16" or "fp16" (also true): autocast + loss scaling for fp16. fp16 needs a CUDA training device.</summary>
    public ComputePrecision MixedPrecision { get; init; } = ComputePrecision.Fp32;
    /// <summary>Index jobs: embed at most this many images of the dataset (its first ones, in dataset order); null = all.</summary>
    public int? MaxImages { get; init; }
    /// <summary>Evaluate jobs: the split scored, "test" (the held-out images training jobs validate on) or "train"; null = test.</summary>
    public string? Split { get; init; }

    // Segmentation jobs only (other job types ignore them).

    /// <summary>The [min, max] scale ratio of the segmentation training augmentation (mmseg's Resize ratio_range; the reference's (0.5, 2.0)).</summary>
    public (double Min, double Max) ScaleRange { get; init; } = (0.5, 2.0);
    /// <summary>Smallest and largest ratio <see cref="ScaleRange"/> accepts: below 0.25 a 64 px scene would shrink to a few pixels of a crop.</summary>
    public const double MinScaleRatio = 0.25, MaxScaleRatio = 4;
    /// <summary>Cross-entropy weight of class 0 (the background; the other classes weigh 1); null = unweighted. Excludes <see cref="ClassWeights"/>.</summary>
    public double? BackgroundWeight { get; init; }
    /// <summary>Cross-entropy weight of each class of the dataset, in class order; null = unweighted. Excludes <see cref="BackgroundWeight"/>.</summary>
    public IReadOnlyList<double>? ClassWeights { get; init; }
    /// <summary>The largest class weight: weights only need to be relative, and larger ones mostly scale the loss (and the lr with it).</summary>
    public const double MaxClassWeight = 100;
    /// <summary>Epoch e trains on the training items [e·N, (e+1)·N) of the whole training set (N = maxTrainImages), not the same N every epoch.</summary>
    public bool FreshScenes { get; init; }
    /// <summary>Stride of the segmenter's output: 4 (the reference's layout) or 2 (4 px patches: the finest level upsampled 2×); null = the base model's own, or 4.</summary>
    public int? OutputStride { get; init; }

    /// <summary>The class weights the loss uses: <see cref="ClassWeights"/>, or the background weight and 1 for the other <paramref name="classes"/> − 1; null = unweighted.</summary>
    public IReadOnlyList<double>? LossWeights(int classes) =>
        ClassWeights ?? (BackgroundWeight is { } bw && bw != 1 ? [bw, .. Enumerable.Repeat(1.0, classes - 1)] : null);

    public static readonly IReadOnlyList<string> Keys = new[]
    {
        "epochs", "maxSteps", "batchSize", "lr", "minLr", "warmupSteps", "imageSize", "model", "seed", "maxTrainImages", "maxValImages",
        "checkpointEverySteps", "keepCheckpoints", "reportEverySteps", "codebookSize", "layerDecay", "weightDecay", "clipGrad", "minCropScale", "workers", "probeFeature",
        "mixedPrecision", "scaleRange", "backgroundWeight", "classWeights", "freshScenes", "outputStride", "split", "maxImages",
    };

    /// <summary>
    /// The keys an <c>evaluate</c> job takes (any other is a 400): <c>maxValImages</c> caps the images scored, whichever the split,
    /// <c>seed</c> picks that subset (and composes the segmentation scenes), <c>batchSize</c> and <c>workers</c> feed the model.
    /// </summary>
    public static readonly IReadOnlyList<string> EvaluateKeys = ["split", "maxValImages", "batchSize", "seed", "workers"];

    /// <summary>
    /// The keys an <c>index</c> job takes (any other is a 400): <c>batchSize</c> images per step (default 64),
    /// <c>maxImages</c> caps the images indexed, <c>checkpointEverySteps</c> how often the items done are committed (default 10),
    /// <c>reportEverySteps</c> how often progress is reported.
    /// </summary>
    public static readonly IReadOnlyList<string> IndexKeys = ["batchSize", "maxImages", "checkpointEverySteps", "reportEverySteps"];

    public static JobSettings Parse(JsonElement? config)
    {
        var s = new JobSettings();
        if (config is not { } c || c.ValueKind == JsonValueKind.Null) return s;
        if (c.ValueKind != JsonValueKind.Object) throw Bad("'config' must be a JSON object, e.g. {\"epochs\": 2, \"batchSize\": 16}.");
        foreach (var p in c.EnumerateObject())
        {
            var v = p.Value;
            s = p.Name switch
            {
                "epochs" => s with { Epochs = Int(p, 1, 100_000) },
                "maxSteps" => s with { MaxSteps = v.ValueKind == JsonValueKind.Null ? null : Int(p, 1, int.MaxValue) },
                "batchSize" => s with { BatchSize = Int(p, 1, 4096) },
                "lr" => s with { Lr = Num(p, 0, 10, exclusiveMin: true) },
                "minLr" => s with { MinLr = Num(p, 0, 10) },
                "warmupSteps" => s with { WarmupSteps = Int(p, 0, int.MaxValue) },
                "imageSize" => s with { ImageSize = Int(p, 8, 1024) },
                "model" => s with { Model = Preset(p) },
                "seed" => s with { Seed = Int(p, 0, int.MaxValue) },
                "maxTrainImages" => s with { MaxTrainImages = Int(p, 1, int.MaxValue) },
                "maxValImages" => s with { MaxValImages = Int(p, 0, int.MaxValue) },
                "maxImages" => s with { MaxImages = Int(p, 1, int.MaxValue) },
                "checkpointEverySteps" => s with { CheckpointEverySteps = Int(p, 0, 1_000_000) },
                "keepCheckpoints" => s with { KeepCheckpoints = Int(p, 1, MaxKeepCheckpoints) },
                "reportEverySteps" => s with { ReportEverySteps = Int(p, 1, int.MaxValue) },
                "codebookSize" => s with { CodebookSize = Int(p, 2, 65536) },
                "layerDecay" => s with { LayerDecay = Num(p, 0, 1, exclusiveMin: true) },
                "weightDecay" => s with { WeightDecay = Num(p, 0, 10) },
                "clipGrad" => s with { ClipGrad = Num(p, 0, 1e6, exclusiveMin: true) },
                "minCropScale" => s with { MinCropScale = Num(p, 0, 1, exclusiveMin: true) },
                "workers" => s with { Workers = Int(p, 1, 64) },
                "probeFeature" => s with { ProbeFeature = v.ValueKind == JsonValueKind.String && v.GetString() is "cls" or "mean"
                    ? v.GetString() : throw Bad($"config.probeFeature must be \"cls\" or \"mean\", got {v.GetRawText()}.") },
                "mixedPrecision" => s with { MixedPrecision = Precision(p) },
                "scaleRange" => s with { ScaleRange = Range(p) },
                "backgroundWeight" => s with { BackgroundWeight = Num(p, 0, MaxClassWeight) },
                "classWeights" => s with { ClassWeights = v.ValueKind == JsonValueKind.Null ? null : Weights(p) },
                "freshScenes" => s with { FreshScenes = v.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? v.GetBoolean() : throw Bad($"config.freshScenes must be true or false, got {v.GetRawText()}.") },
                "outputStride" => s with { OutputStride = v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var os) && os is 2 or 4
                    ? os : throw Bad($"config.outputStride must be 4 (the segmenter's usual layout) or 2 (models with 4 px patches: " +
                                     $"the finest feature level upsampled 2×), got {v.GetRawText()}.") },
                "split" => s with { Split = v.ValueKind == JsonValueKind.String && v.GetString() is "test" or "train"
                    ? v.GetString() : throw Bad($"config.split must be \"test\" or \"train\", got {v.GetRawText()}.") },
                _ => throw Bad($"Unknown config key '{p.Name}'. Known keys: {string.Join(", ", Keys)}."),
            };
        }
        if (s.BackgroundWeight is not null && s.ClassWeights is not null)
            throw Bad("Give config.backgroundWeight or config.classWeights, not both: classWeights[0] is the background's weight.");
        if (s.FreshScenes && s.MaxTrainImages is null)
            throw Bad("config.freshScenes needs config.maxTrainImages: the number of new training scenes each epoch takes.");
        return s;
    }

    private static (double Min, double Max) Range(JsonProperty p)
    {
        var v = p.Value;
        var what = $"config.{p.Name} must be [min, max] with {MinScaleRatio} ≤ min ≤ max ≤ {MaxScaleRatio} " +
                   $"(the scale ratios of the segmentation augmentation; [1, 1] turns scaling off), got {v.GetRawText()}.";
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 2 || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number))
            throw Bad(what);
        double min = v[0].GetDouble(), max = v[1].GetDouble();
        if (!(min >= MinScaleRatio && min <= max && max <= MaxScaleRatio)) throw Bad(what);
        return (min, max);
    }

    private static double[] Weights(JsonProperty p)
    {
        var v = p.Value;
        // Masks are bytes with 255 = unlabelled, so a dataset has at most 255 classes.
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() is < 1 or > 255)
            throw Bad($"config.{p.Name} must be an array with one weight per class (1 to 255 numbers), got {v.GetRawText()}.");
        var weights = new double[v.GetArrayLength()];
        var i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !double.IsFinite(e.GetDouble()) || e.GetDouble() is < 0 or > MaxClassWeight)
                throw Bad($"config.{p.Name}[{i}] must be a number from 0 to {MaxClassWeight}, got {e.GetRawText()}.");
            weights[i++] = e.GetDouble();
        }
        if (weights.All(w => w == 0)) throw Bad($"config.{p.Name} must give at least one class a weight above 0.");
        return weights;
    }

    private static InvalidRequestException Bad(string detail) => new(detail);

    private static int Int(JsonProperty p, int min, int max)
    {
        if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out var v))
            throw Bad($"config.{p.Name} must be an integer, got {p.Value.GetRawText()}.");
        if (v < min || v > max) throw Bad($"config.{p.Name} must be between {min} and {max}, got {v}.");
        return (int)v;
    }

    private static double Num(JsonProperty p, double min, double max, bool exclusiveMin = false)
    {
        if (p.Value.ValueKind != JsonValueKind.Number) throw Bad($"config.{p.Name} must be a number, got {p.Value.GetRawText()}.");
        var v = p.Value.GetDouble();
        if (!double.IsFinite(v) || v < min || (exclusiveMin && v == min) || v > max)
            throw Bad($"config.{p.Name} must be {(exclusiveMin ? "greater than" : "at least")} {min} and at most {max}, got {v}.");
        return v;
    }

    private static ComputePrecision Precision(JsonProperty p)
    {
        var v = p.Value;
        if (v.ValueKind == JsonValueKind.False || v.ValueKind == JsonValueKind.Null) return ComputePrecision.Fp32;
        if (v.ValueKind == JsonValueKind.True) return ComputePrecision.Fp16;
        if (v.ValueKind == JsonValueKind.String && v.GetString() is "fp32" or "none" or "bf16" or "fp16")
            return ComputePrecisions.Parse(v.GetString());
        throw Bad($"config.mixedPrecision must be \"fp32\" (or \"none\", false), \"bf16\" or \"fp16\" (or true), got {v.GetRawText()}.");
    }

    private static string Preset(JsonProperty p)
    {
        var v = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
        if (v is null || !ModelPresets.Names.Contains(v))
        {
            var names = ModelPresets.Names.Select(n => $"\"{n}\"").ToList();
            throw Bad($"config.model must be {string.Join(", ", names[..^1])} or {names[^1]}, got {p.Value.GetRawText()}.");
        }
        return v;
    }
}
