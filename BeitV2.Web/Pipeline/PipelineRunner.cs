using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Ml.Models;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Evaluation;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Pipeline;

/// <summary>What one finished stage produced.</summary>
public sealed record StageResult(string Stage, string? Model, IReadOnlyDictionary<string, double> Metrics, long Steps, double Seconds);

/// <summary>The pipeline's persistent state (<c>pipeline.json</c> in its work folder): finished stages are not run again.</summary>
public sealed record PipelineState
{
    public required string Preset { get; init; }
    public required int Seed { get; init; }
    public string Version { get; init; } = PipelinePreset.Version;
    public string? RandomBackbone { get; init; }
    public Dictionary<string, StageResult> Stages { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>How a pipeline run ended.</summary>
public sealed record PipelineOutcome(bool Cancelled, PipelineState State, string? Classifier);

/// <summary>
/// Runs the BEiT v2 pipeline: teacher → VQ-KD tokenizer → MIM pretraining → linear probes (MIM [CLS],
/// MIM mean, random backbone, raw pixels) → fine-tune (MIM vs scratch, few labels) → the served classifier
/// (MIM, all labels) → segmentation (MIM vs scratch), then two measurements computed inline: the raw-pixel probe and the
/// agreement of the served segmenter with the served classifier on isolated test items.
/// Every stage is a job of the jobs API built by <see cref="JobPlanner"/>; the models later stages need
/// and the ones worth serving are registered. State and per-stage checkpoints live in the work folder,
/// so an interrupted pipeline continues with the stage it was in, from its newest checkpoint.
/// </summary>
public sealed class PipelineRunner(JobPlanner planner, ModelRegistry registry, DatasetCatalog datasets, AgreementEvaluator agreement,
    Domains.TrainedDomains domains)
{
    public const string StateFile = "pipeline.json";

    /// <summary>Test items of the <c>agreement</c> stage: the first this many of the Fashion-MNIST test split.</summary>
    public const int AgreementItems = 1000;

    /// <summary>Stages whose model is registered (the others are comparisons).</summary>
    private static readonly HashSet<string> Registered = ["teacher", "tokenizer", "pretrain", "classifier", "segmentation"];

    /// <param name="until">Stop after this stage (null: run them all); a later run with the same work folder continues.</param>
    public PipelineOutcome Run(string presetName, int seed, string workDirectory, string runId, IProgress<TrainingProgress> progress,
        Action<string> log, CancellationToken ct, string? until = null)
    {
        var preset = PipelinePreset.Get(presetName, seed);
        if (until is not null && !preset.StageNames.Contains(until))
            throw new ArgumentException($"Unknown stage '{until}'. Stages: {string.Join(", ", preset.StageNames)}.");
        Directory.CreateDirectory(workDirectory);
        var statePath = Path.Combine(workDirectory, StateFile);
        var state = File.Exists(statePath)
            ? JsonSerializer.Deserialize<PipelineState>(File.ReadAllText(statePath), JobStore.Json)!
            : new PipelineState { Preset = preset.Name, Seed = seed };
        if (state.Preset != preset.Name || state.Seed != seed)
            throw new ArgumentException($"The work folder holds a '{state.Preset}' pipeline with seed {state.Seed}, not '{preset.Name}' with seed {seed}.");
        void Save() => AtomicFile.WriteAllText(statePath, JsonSerializer.Serialize(state, JobStore.Json));

        var total = preset.StageNames.Count;
        for (var i = 0; i < preset.Stages.Count; i++)
        {
            var stage = preset.Stages[i];
            if (state.Stages.ContainsKey(stage.Name))
            {
                log($"stage {i + 1}/{total} {stage.Name}: already done");
                if (stage.Name == until) return new PipelineOutcome(false, state, null);
                continue;
            }
            ct.ThrowIfCancellationRequested();
            if (stage.Name.StartsWith("probe-random", StringComparison.Ordinal) && state.RandomBackbone is null)
            {
                state = state with { RandomBackbone = RegisterRandomBackbone(preset, seed, runId) };
                Save();
            }
            var (baseModel, teacher, tokenizer) = Inputs(stage.Name, state);
            log($"stage {i + 1}/{total} {stage.Name}: {stage.Description}");
            var record = new JobRecord
            {
                Id = $"{runId}-{stage.Name}", Type = stage.Type, Dataset = stage.Dataset, BaseModel = baseModel, Teacher = teacher, Tokenizer = tokenizer,
                Config = JsonSerializer.SerializeToElement(stage.Config), Status = JobStatus.Running, CreatedAt = DateTimeOffset.UtcNow,
            };
            var checkpoints = Path.Combine(workDirectory, "checkpoints", stage.Name);
            var clock = Stopwatch.StartNew();
            using var plan = planner.Build(record, checkpoints, TrainingCheckpoint.FindLatest(checkpoints));
            var result = plan.Run(progress, ct);
            if (result.Status == TrainingStatus.Cancelled) return new PipelineOutcome(true, state, null);
            string? model = null;
            if (Registered.Contains(stage.Name))
            {
                var notes = new List<string>
                {
                    $"BEiT v2 pipeline v{PipelinePreset.Version}, preset {preset.Name}, seed {seed}, stage {stage.Name}: {stage.Description}",
                    "metrics: " + string.Join(", ", result.Metrics.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value:G5}")),
                };
                model = registry.Add(result.Model, $"{stage.Description} ({preset.Name})", $"pipeline:{runId}", plan.Labels,
                    new ModelLineage(runId, null, baseModel ?? teacher ?? tokenizer, notes, Output: "stage:" + stage.Name), makeDefault: false,
                    dataset: stage.Dataset).Id;
                log(domains.Describe(model, stage.Dataset, result.Metrics, seed, ct));
            }
            state.Stages[stage.Name] = new StageResult(stage.Name, model, new Dictionary<string, double>(result.Metrics), result.Step,
                Math.Round(clock.Elapsed.TotalSeconds, 1));
            Save();
            log($"stage {stage.Name} done in {clock.Elapsed.TotalMinutes:F1} min: " +
                string.Join(", ", result.Metrics.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value:G4}")));
            if (stage.Name == until) return new PipelineOutcome(false, state, null);
        }

        if (!state.Stages.ContainsKey(PipelinePreset.PixelProbeStage))
        {
            log($"stage {total - 1}/{total} probe-pixels: linear probe on raw pixels");
            var clock = Stopwatch.StartNew();
            var accuracy = PixelProbe(preset, seed, ct);
            state.Stages[PipelinePreset.PixelProbeStage] = new StageResult(PipelinePreset.PixelProbeStage, null, new Dictionary<string, double> { ["accuracy"] = accuracy },
                preset.PixelProbeEpochs, Math.Round(clock.Elapsed.TotalSeconds, 1));
            Save();
            log($"stage probe-pixels done: accuracy={accuracy:G4}");
        }
        if (until == PipelinePreset.PixelProbeStage) return new PipelineOutcome(false, state, null);

        if (!state.Stages.ContainsKey(PipelinePreset.AgreementStage))
        {
            // "The segmenter agrees with the classifier on isolated items at least as often as the classifier is right."
            log($"stage {total}/{total} {PipelinePreset.AgreementStage}: the segmenter and the classifier on {AgreementItems} isolated test items");
            var clock = Stopwatch.StartNew();
            var result = agreement.Run(registry.Get(Model(state, "segmentation")), registry.Get(Model(state, "classifier")), AgreementItems, ct);
            state.Stages[PipelinePreset.AgreementStage] = new StageResult(PipelinePreset.AgreementStage, null, result.Metrics(), result.Items,
                Math.Round(clock.Elapsed.TotalSeconds, 1));
            Save();
            log($"stage {PipelinePreset.AgreementStage} done: " +
                string.Join(", ", result.Metrics().OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value:G4}")));
        }
        return new PipelineOutcome(false, state, state.Stages["classifier"].Model);
    }

    private static string Model(PipelineState state, string stage) =>
        state.Stages[stage].Model ?? throw new InvalidOperationException($"stage {stage} registered no model");

    private static (string? Base, string? Teacher, string? Tokenizer) Inputs(string stage, PipelineState state)
    {
        string Model(string name) => PipelineRunner.Model(state, name);
        return stage switch
        {
            "teacher" or "finetune-scratch" or "segmentation-scratch" => (null, null, null),
            "tokenizer" => (null, Model("teacher"), null),
            "pretrain" => (null, null, Model("tokenizer")),
            "probe-random-cls" or "probe-random-mean" => (state.RandomBackbone, null, null),
            "segmentation" => (Model("classifier"), null, null),
            _ => (Model("pretrain"), null, null),
        };
    }

    private string RegisterRandomBackbone(PipelinePreset preset, int seed, string runId)
    {
        TrainerBase.SeedEverything(seed);
        var config = ModelPresets.Vit(preset.Model, numClasses: 0);
        using var model = new BeitVisionTransformer(config);
        return registry.Add(model, $"random backbone ({preset.Name})", $"pipeline:{runId}",
            lineage: new ModelLineage(runId, null, null, ["randomly initialised (the baseline of the linear probes)"], Output: "random-backbone"),
            makeDefault: false, dataset: preset.Stages[0].Dataset).Id;
    }

    /// <summary>
    /// The raw-pixel baseline: the same probe recipe (non-affine standardisation + linear layer, AdamW) on
    /// the 784 grey values of each image.
    /// </summary>
    private double PixelProbe(PipelinePreset preset, int seed, CancellationToken ct)
    {
        var (train, test) = datasets.Open(DatasetCatalog.FashionMnist, preset.PixelProbeTrainImages, preset.PixelProbeTestImages, seed);
        if (test is null || test.Count == 0) throw new InvalidOperationException("The pixel probe needs the Fashion-MNIST test split.");
        using var scope = TorchSharp.torch.NewDisposeScope();
        var (x, y) = Load(train);
        var (xt, yt) = Load(test);
        var mean = x.mean([0L], keepdim: true);
        var std = x.std(0, keepdim: true) + 1e-6;
        x = (x - mean) / std;
        xt = (xt - mean) / std;
        TrainerBase.SeedEverything(seed);
        using var head = TorchSharp.torch.nn.Linear(x.shape[1], 10);
        var optimizer = TorchSharp.torch.optim.AdamW(head.parameters(), lr: 1e-3, weight_decay: 0);
        const int batch = 256;
        var n = x.shape[0];
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        for (var epoch = 0; epoch < preset.PixelProbeEpochs; epoch++)
        {
            using var order = TorchSharp.torch.randperm(n, generator: generator);
            for (long start = 0; start + batch <= n; start += batch)
            {
                ct.ThrowIfCancellationRequested();
                using var inner = TorchSharp.torch.NewDisposeScope();
                var idx = order.narrow(0, start, batch);
                var loss = TorchSharp.torch.nn.functional.cross_entropy(head.call(x.index_select(0, idx)), y.index_select(0, idx));
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
            }
        }
        using (TorchSharp.torch.no_grad())
        {
            var predicted = head.call(xt).argmax(1);
            return predicted.eq(yt).to_type(TorchSharp.torch.ScalarType.Float32).mean().item<float>();
        }

        static (TorchSharp.torch.Tensor X, TorchSharp.torch.Tensor Y) Load(BeitV2.Ml.Data.IImageDataset set)
        {
            var first = set.Get(0).Image;
            var features = first.Width * first.Height;
            var pixels = new float[(long)set.Count * features];
            var labels = new long[set.Count];
            Parallel.For(0, set.Count, i =>
            {
                var sample = set.Get(i);
                var rgb = sample.Image.Pixels;
                for (var p = 0; p < features; p++) pixels[(long)i * features + p] = rgb[3 * p] / 255f; // grey: R = G = B
                labels[i] = sample.Label;
            });
            return (TorchSharp.torch.tensor(pixels, [set.Count, features]), TorchSharp.torch.tensor(labels));
        }
    }
}
