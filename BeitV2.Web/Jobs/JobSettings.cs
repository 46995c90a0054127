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
    /// <summary>Evaluate jobs: the split scored, "test" (the held-out images training jobs validate on) or "train"; null = test.</summary>
    public string? Split { get; init; }

    public static readonly IReadOnlyList<string> Keys = new[]
    {
        "epochs", "maxSteps", "batchSize", "lr", "minLr", "warmupSteps", "imageSize", "model", "seed", "maxTrainImages", "maxValImages",
        "checkpointEverySteps", "keepCheckpoints", "reportEverySteps", "codebookSize", "layerDecay", "weightDecay", "clipGrad", "minCropScale", "workers", "probeFeature",
        "mixedPrecision", "split",
    };

    /// <summary>
    /// The keys an <c>evaluate</c> job takes (any other is a 400): <c>maxValImages</c> caps the images scored, whichever the split,
    /// <c>seed</c> picks that subset (and composes the segmentation scenes), <c>batchSize</c> and <c>workers</c> feed the model.
    /// </summary>
    public static readonly IReadOnlyList<string> EvaluateKeys = ["split", "maxValImages", "batchSize", "seed", "workers"];

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
                "checkpointEverySteps" => s with { CheckpointEverySteps = Int(p, 0, int.MaxValue) },
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
                "split" => s with { Split = v.ValueKind == JsonValueKind.String && v.GetString() is "test" or "train"
                    ? v.GetString() : throw Bad($"config.split must be \"test\" or \"train\", got {v.GetRawText()}.") },
                _ => throw Bad($"Unknown config key '{p.Name}'. Known keys: {string.Join(", ", Keys)}."),
            };
        }
        return s;
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
