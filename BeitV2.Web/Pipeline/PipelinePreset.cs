using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Pipeline;

/// <summary>One stage of the pipeline: a training job of the jobs API, with its config.</summary>
public sealed record PipelineStage(string Name, JobType Type, string Dataset, string Description, JsonObject Config);

/// <summary>
/// The stages and budgets of the BEiT v2 pipeline on Fashion-MNIST. <c>fashion-small</c> is what
/// the bundled default models are trained with (sized for a 2-core CPU: 54 minutes in the run that trained them);
/// <c>smoke</c> runs every stage on a few batches of micro models (seconds, for tests).
/// </summary>
public sealed record PipelinePreset(string Name, string Model, int SegmentationImageSize, IReadOnlyList<PipelineStage> Stages, int PixelProbeEpochs,
    int PixelProbeTrainImages, int PixelProbeTestImages)
{
    /// <summary>Bumped whenever a preset's stages or budgets change: the manifests of the models name it.</summary>
    public const string Version = "3";

    public static IReadOnlyList<string> Names { get; } = ["fashion-small", "smoke"];

    /// <summary>The stage names in order, the last two being the raw-pixel probe and the segmenter–classifier agreement (not jobs).</summary>
    public IReadOnlyList<string> StageNames => [.. Stages.Select(s => s.Name), PixelProbeStage, AgreementStage];

    public const string PixelProbeStage = "probe-pixels";

    /// <summary>The served segmenter against the served classifier on isolated test items (computed inline, after the pixel probe).</summary>
    public const string AgreementStage = "agreement";

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

    /// <summary>The stages in order; each preset gives the config of each kind of stage.</summary>
    private static IReadOnlyList<PipelineStage> StageList(int seed, object teacher, object tokenizer, object pretrain, object probe, object fineTune,
        object classifier, object segment)
    {
        const string fm = "fashion-mnist", seg = "fashion-mnist-seg";
        return
        [
            new("teacher", JobType.Teacher, fm, "supervised convolutional teacher (stands in for CLIP)", Config(teacher, seed)),
            new("tokenizer", JobType.Tokenizer, fm, "VQ-KD tokenizer distilled from the teacher", Config(tokenizer, seed)),
            new("pretrain", JobType.Pretrain, fm, "MIM pretraining with patch aggregation", Config(pretrain, seed)),
            new("probe-mim-cls", JobType.LinearProbe, fm, "linear probe, MIM [CLS]", Config(probe, seed).With("probeFeature", "cls")),
            new("probe-mim-mean", JobType.LinearProbe, fm, "linear probe, MIM mean pooling", Config(probe, seed).With("probeFeature", "mean")),
            new("probe-random-cls", JobType.LinearProbe, fm, "linear probe, random backbone [CLS]", Config(probe, seed).With("probeFeature", "cls")),
            new("probe-random-mean", JobType.LinearProbe, fm, "linear probe, random backbone mean pooling", Config(probe, seed).With("probeFeature", "mean")),
            new("finetune-mim", JobType.FineTune, fm, "fine-tune from the MIM backbone", Config(fineTune, seed)),
            // From scratch without layer-wise lr decay: decaying the lower layers' lr only makes sense for pretrained ones.
            new("finetune-scratch", JobType.FineTune, fm, "the same fine-tune from random weights", Config(fineTune, seed).With("layerDecay", 1.0)),
            new("classifier", JobType.FineTune, fm, "the served classifier: fine-tune from the MIM backbone on the whole training split", Config(classifier, seed)),
            // From the served classifier's backbone (MIM, then fine-tuned with labels): BEiT's route of intermediate
            // fine-tuning before segmentation, and the segmenter then names garments as the classifier does.
            new("segmentation", JobType.Segmentation, seg, "UperNet segmenter from the served classifier (MIM, then fine-tuned)", Config(segment, seed)),
            new("segmentation-scratch", JobType.Segmentation, seg, "the same segmenter from random weights", Config(segment, seed).With("layerDecay", 1.0)),
        ];
    }

    private static PipelinePreset FashionSmall(int seed)
    {
        // Every accuracy is measured on the whole Fashion-MNIST test split (10,000 images).
        // Budgets from measured speeds on a quiet 2-core CPU (fine-tune of the small ViT: ~200 img/s).
        // The teacher gets the most: ViTs from scratch learn slowly at this budget (a PyTorch re-implementation
        // of the same model and recipe learns at the same pace), and the tokenizer can only be as good as its teacher.
        const int val = 10000;
        return new PipelinePreset("fashion-small", "small", 56, StageList(seed,
            teacher: new { model = "small", epochs = 3, batchSize = 128, lr = 3e-3, warmupSteps = 100, maxTrainImages = 60000, maxValImages = val, minCropScale = 0.8, workers = 2 },
            tokenizer: new { model = "small", epochs = 2, batchSize = 128, lr = 1e-3, warmupSteps = 50, codebookSize = 64, maxTrainImages = 30000, maxValImages = 2000, workers = 2 },
            pretrain: new { model = "small", epochs = 2, batchSize = 128, lr = 1.5e-3, warmupSteps = 100, maxTrainImages = 60000, workers = 2 },
            probe: new { model = "small", epochs = 4, batchSize = 256, lr = 1e-2, maxTrainImages = 20000, maxValImages = val, minCropScale = 0.9, workers = 2 },
            fineTune: new { model = "small", epochs = 3, batchSize = 64, lr = 2e-3, warmupSteps = 50, maxTrainImages = 5000, maxValImages = val, layerDecay = 0.75, workers = 2 },
            classifier: new { model = "small", epochs = 3, batchSize = 64, lr = 1.5e-3, warmupSteps = 200, maxTrainImages = 60000, maxValImages = val, layerDecay = 0.75, minCropScale = 0.8, workers = 2 },
            // Segmentation: no 0.5–2× scale jitter (a 28 px garment shrunk to 14 px has 3×3 patches left), the background
            // (85 % of the pixels) weighted 0.25, 12,000 new scenes in each of two epochs, and the finest level upsampled 2×.
            segment: new
            {
                model = "small", epochs = 2, batchSize = 16, lr = 3e-3, warmupSteps = 50, maxTrainImages = 12000, freshScenes = true, maxValImages = 1000,
                imageSize = 56, layerDecay = 0.75, scaleRange = new[] { 1.0, 1.0 }, backgroundWeight = 0.25, outputStride = 2, workers = 2,
            }),
            PixelProbeEpochs: 4, PixelProbeTrainImages: 20000, PixelProbeTestImages: val);
    }

    private static PipelinePreset Smoke(int seed)
    {
        var tiny = new { model = "micro", epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32, workers = 1 };
        return new PipelinePreset("smoke", "micro", 64, StageList(seed, tiny,
            tokenizer: new { model = "micro", epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32, workers = 1, codebookSize = 32 },
            pretrain: tiny, probe: tiny, fineTune: tiny, classifier: tiny,
            segment: new { model = "micro", epochs = 1, batchSize = 8, maxTrainImages = 32, maxValImages = 16, imageSize = 64, workers = 1 }),
            PixelProbeEpochs: 1, PixelProbeTrainImages: 256, PixelProbeTestImages: 64);
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
