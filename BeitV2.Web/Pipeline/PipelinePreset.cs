using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Pipeline;

/// <summary>One stage of the pipeline: a training job of the jobs API, with its config.</summary>
public sealed record PipelineStage(string Name, string Type, string Dataset, string Description, JsonObject Config);

/// <summary>
/// The stages and budgets of the BEiT v2 pipeline on Fashion-MNIST. <c>fashion-small</c> is what
/// the bundled default models were trained with (sized for a 2-core CPU, about 45 minutes);
/// <c>smoke</c> runs every stage on a few batches of micro models (seconds, for tests).
/// </summary>
public sealed record PipelinePreset(string Name, string Model, int SegmentationImageSize, IReadOnlyList<PipelineStage> Stages, int PixelProbeEpochs,
    int PixelProbeTrainImages, int PixelProbeTestImages)
{
    /// <summary>Bumped whenever a preset's stages or budgets change: the manifests of the models name it.</summary>
    public const string Version = "1";

    public static IReadOnlyList<string> Names { get; } = ["fashion-small", "smoke"];

    public static PipelinePreset Get(string name, int seed) => name switch
    {
        "fashion-small" => FashionSmall(seed),
        "smoke" => Smoke(seed),
        _ => throw new ArgumentException($"Unknown pipeline preset '{name}'. Known presets: {string.Join(", ", Names)}."),
    };

    private static JsonObject Config(object values, int seed)
    {
        var node = JsonSerializer.SerializeToNode(values, JobStore.Json)!.AsObject();
        node["seed"] = seed;
        return node;
    }

    private static PipelinePreset FashionSmall(int seed)
    {
        const string fm = "fashion-mnist", seg = "fashion-mnist-seg";
        // Probes and the label-efficiency comparisons use the same held-out images: the first 5,000 of the test split.
        const int val = 5000;
        var probe = new { model = "small", epochs = 4, batchSize = 256, lr = 4e-3, maxValImages = val, minCropScale = 0.9, workers = 2 };
        var fineTune = new { model = "small", epochs = 3, batchSize = 64, lr = 2e-3, warmupSteps = 50, maxTrainImages = 10000, maxValImages = val, layerDecay = 0.75, workers = 2 };
        var segment = new { model = "small", epochs = 3, batchSize = 32, lr = 1e-3, warmupSteps = 50, maxTrainImages = 4000, maxValImages = 1000, imageSize = 56, layerDecay = 0.75, workers = 2 };
        return new PipelinePreset("fashion-small", "small", 56,
        [
            new("teacher", JobTypes.FineTune, fm, "supervised ViT-small teacher (stands in for CLIP)",
                Config(new { model = "small", epochs = 4, batchSize = 128, lr = 2e-3, warmupSteps = 100, maxValImages = val, layerDecay = 1.0, workers = 2 }, seed)),
            new("tokenizer", JobTypes.Tokenizer, fm, "VQ-KD tokenizer distilled from the teacher",
                Config(new { model = "small", epochs = 2, batchSize = 128, lr = 2e-3, warmupSteps = 50, codebookSize = 512, maxValImages = 2000, workers = 2 }, seed)),
            new("pretrain", JobTypes.Pretrain, fm, "MIM pretraining with patch aggregation",
                Config(new { model = "small", epochs = 6, batchSize = 128, lr = 1.5e-3, warmupSteps = 100, workers = 2 }, seed)),
            new("probe-mim-cls", JobTypes.LinearProbe, fm, "linear probe, MIM [CLS]", Config(probe, seed).With("probeFeature", "cls")),
            new("probe-mim-mean", JobTypes.LinearProbe, fm, "linear probe, MIM mean pooling", Config(probe, seed).With("probeFeature", "mean")),
            new("probe-random-cls", JobTypes.LinearProbe, fm, "linear probe, random backbone [CLS]", Config(probe, seed).With("probeFeature", "cls")),
            new("probe-random-mean", JobTypes.LinearProbe, fm, "linear probe, random backbone mean pooling", Config(probe, seed).With("probeFeature", "mean")),
            new("finetune-mim", JobTypes.FineTune, fm, "fine-tune from the MIM backbone", Config(fineTune, seed)),
            new("finetune-scratch", JobTypes.FineTune, fm, "the same fine-tune from random weights", Config(fineTune, seed)),
            new("segmentation-mim", JobTypes.Segmentation, seg, "UperNet segmenter from the MIM backbone", Config(segment, seed)),
            new("segmentation-scratch", JobTypes.Segmentation, seg, "the same segmenter from random weights", Config(segment, seed)),
        ], PixelProbeEpochs: 4, PixelProbeTrainImages: 60000, PixelProbeTestImages: val);
    }

    private static PipelinePreset Smoke(int seed)
    {
        const string fm = "fashion-mnist", seg = "fashion-mnist-seg";
        var tiny = new { model = "micro", epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32, workers = 1 };
        var segment = new { model = "micro", epochs = 1, batchSize = 8, maxTrainImages = 32, maxValImages = 16, workers = 1 };
        return new PipelinePreset("smoke", "micro", 64,
        [
            new("teacher", JobTypes.FineTune, fm, "supervised teacher", Config(tiny, seed)),
            new("tokenizer", JobTypes.Tokenizer, fm, "VQ-KD tokenizer", Config(tiny, seed).With("codebookSize", 32)),
            new("pretrain", JobTypes.Pretrain, fm, "MIM pretraining", Config(tiny, seed)),
            new("probe-mim-cls", JobTypes.LinearProbe, fm, "linear probe, MIM [CLS]", Config(tiny, seed).With("probeFeature", "cls")),
            new("probe-mim-mean", JobTypes.LinearProbe, fm, "linear probe, MIM mean pooling", Config(tiny, seed).With("probeFeature", "mean")),
            new("probe-random-cls", JobTypes.LinearProbe, fm, "linear probe, random backbone [CLS]", Config(tiny, seed).With("probeFeature", "cls")),
            new("probe-random-mean", JobTypes.LinearProbe, fm, "linear probe, random backbone mean", Config(tiny, seed).With("probeFeature", "mean")),
            new("finetune-mim", JobTypes.FineTune, fm, "fine-tune from MIM", Config(tiny, seed)),
            new("finetune-scratch", JobTypes.FineTune, fm, "fine-tune from scratch", Config(tiny, seed)),
            new("segmentation-mim", JobTypes.Segmentation, seg, "segmenter from MIM", Config(segment, seed)),
            new("segmentation-scratch", JobTypes.Segmentation, seg, "segmenter from scratch", Config(segment, seed)),
        ], PixelProbeEpochs: 1, PixelProbeTrainImages: 256, PixelProbeTestImages: 64);
    }
}

internal static class JsonObjectExtensions
{
    public static JsonObject With(this JsonObject o, string key, JsonNode? value)
    {
        o[key] = value;
        return o;
    }
}
