using BeitV2.Ml.Masking;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Options of <see cref="PretrainTrainer"/> (unilm beit2/run_beitv2_pretraining.py). Defaults are small; the presets are the PRETRAINING.md commands.</summary>
public sealed record PretrainTrainerOptions : TrainerOptions
{
    public PretrainTrainerOptions()
    {
        LearningRate = 1.5e-3;
        MinLearningRate = 1e-5;
        WeightDecay = 0.05;
        Beta1 = 0.9;
        Beta2 = 0.999;
        ClipGrad = 3.0;
    }

    /// <summary>Patches masked per image when a batch carries no mask (75 of 196 in the recipe; scaled to the grid by default).</summary>
    public int? NumMaskPatches { get; init; }
    /// <summary>Smallest block of the block-wise masking when the trainer generates masks (16 in the recipe).</summary>
    public int MinMaskPatchesPerBlock { get; init; } = 16;

    /// <summary>Base, 1600 epochs: lr 1.5e-3, warmup 10, min lr 1e-5, AdamW (0.9, 0.999), wd 0.05, clip 3.0 (model: drop path 0.1).</summary>
    public static PretrainTrainerOptions Base1600() => new()
    {
        Epochs = 1600, WarmupEpochs = 10, LearningRate = 1.5e-3, MinLearningRate = 1e-5, WeightDecay = 0.05,
        Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8, ClipGrad = 3.0, NumMaskPatches = 75, MinMaskPatchesPerBlock = 16,
    };

    /// <summary>Base, 300 epochs: as <see cref="Base1600"/> with betas (0.9, 0.98) (model: drop path 0).</summary>
    public static PretrainTrainerOptions Base300() => Base1600() with { Epochs = 300, Beta2 = 0.98 };

    /// <summary>Large, 1600 epochs (same optimiser settings as base).</summary>
    public static PretrainTrainerOptions Large1600() => Base1600();

    /// <summary>Large, 300 epochs.</summary>
    public static PretrainTrainerOptions Large300() => Base300();

    internal override void Validate()
    {
        base.Validate();
        Require(NumMaskPatches is null or >= 1, "the number of masked patches must be positive");
        Require(MinMaskPatchesPerBlock >= 0, "the minimum mask block must be non-negative");
    }
}

/// <summary>
/// BEiT v2 masked image modelling (engine_for_pretraining): the frozen tokenizer labels the
/// tokenizer view under no_grad (<see cref="VqkdTokenizer.GetCodebookIndices"/>, eval mode, without
/// touching its usage statistic), the MIM model predicts the masked patches' tokens from both branches,
/// loss = CE(final) + CE(aggregated) (<see cref="BeitMim.Loss"/>).
/// </summary>
/// <remarks>
/// Batches: <see cref="TrainingBatch.Images"/> (model view, normalised), <see cref="TrainingBatch.TokenizerImages"/>
/// ([0, 1]; when absent the model view is used, which is only right if it is in [0, 1] too) and
/// <see cref="TrainingBatch.MaskedPositions"/> (B, N) bool — when absent, block-wise masks are drawn
/// with a generator seeded from the run seed and the step, so a resumed run draws the same masks.
/// Step metrics: <c>mimAccuracy</c> (final branch), <c>mimAccuracyAggregated</c> (aggregation head),
/// <c>lossFinal</c>, <c>lossAggregated</c>. Evaluation (optional held-out split, fixed masks):
/// <c>valLoss</c>, <c>valMimAccuracy</c>, <c>valMimAccuracyAggregated</c>.
/// </remarks>
public sealed class PretrainTrainer : TrainerBase
{
    private readonly BeitMim model;
    private readonly VqkdTokenizer tokenizer;

    public PretrainTrainer(BeitMim model, VqkdTokenizer tokenizer, PretrainTrainerOptions options) : base("pretrain", options)
    {
        this.model = model;
        this.tokenizer = tokenizer;
        Options = options;
        if (tokenizer.VocabSize != model.Config.VocabSize)
            throw new ArgumentException($"The tokenizer has {tokenizer.VocabSize} codes but the MIM model predicts {model.Config.VocabSize} (vocab_size).");
        if (tokenizer.Config.GridSize != model.Config.GridSize)
            throw new ArgumentException(
                $"The tokenizer gives a {tokenizer.Config.GridSize}x{tokenizer.Config.GridSize} token grid, the MIM model has {model.Config.GridSize}x{model.Config.GridSize} patches.");
    }

    public PretrainTrainerOptions Options { get; }
    public BeitMim Model => model;

    public TrainingResult Run(ITrainingData train, ITrainingData? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => RunCore(train, validation, progress, cancellationToken);

    private protected override nn.Module CheckpointModule => model;

    private protected override IReadOnlyList<ParameterGroup> CreateParameterGroups() => ParameterGroups.ForPretraining(model, Options.WeightDecay);

    private protected override void MoveToDevice()
    {
        model.to(Device);
        tokenizer.to(Device);
        tokenizer.eval();
        tokenizer.Quantizer.TrackUsageInEval = false;
        foreach (var p in tokenizer.parameters()) p.requires_grad = false;
    }

    private protected override void SetTrainMode()
    {
        model.train();
        tokenizer.eval();
    }

    private protected override StepOutput TrainStep(TrainingBatch batch, long step)
    {
        var mask = batch.MaskedPositions?.to(ScalarType.Bool) ?? GenerateMasks(batch.Count, Options.Seed * 1_000_003 + step);
        Tensor ids;
        using (no_grad()) ids = tokenizer.GetCodebookIndices(batch.TokenizerImages ?? batch.Images);
        var loss = model.Loss(batch.Images, mask.flatten(1), ids);
        double l1, l2;
        using (no_grad())
        {
            l1 = loss.Final.to(float64).item<double>();
            l2 = loss.Aggregated.to(float64).item<double>();
        }
        return new StepOutput(loss.Total, new Dictionary<string, double>
        {
            ["mimAccuracy"] = loss.AccuracyFinal, ["mimAccuracyAggregated"] = loss.AccuracyAggregated,
            ["lossFinal"] = l1, ["lossAggregated"] = l2,
        });
    }

    private Tensor GenerateMasks(int batchSize, long seed)
    {
        var grid = model.Config.GridSize;
        var numMask = Options.NumMaskPatches ?? Math.Max(1, (int)Math.Round(grid * grid * 75.0 / 196.0));
        var minBlock = Math.Min(Options.MinMaskPatchesPerBlock, numMask);
        var generator = new BlockMaskingGenerator(grid, numMask, minBlock, seed: unchecked((int)(seed ^ (seed >> 32))));
        return generator.GenerateBatch(batchSize, Device);
    }

    private protected override Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken)
    {
        model.eval();
        double loss = 0, acc1 = 0, acc2 = 0;
        var count = 0;
        foreach (var b in validation.GetBatches(0))
        {
            using var batch = b;
            if (cancellationToken.IsCancellationRequested) break;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var images = batch.Images.to(Device);
            var mask = batch.MaskedPositions?.to(Device).to(ScalarType.Bool) ?? GenerateMasks(batch.Count, 7919 + count);
            var ids = tokenizer.GetCodebookIndices((batch.TokenizerImages ?? batch.Images).to(Device));
            using var l = model.Loss(images, mask.flatten(1), ids);
            loss += l.Total.to(float64).item<double>();
            acc1 += l.AccuracyFinal;
            acc2 += l.AccuracyAggregated;
            count++;
        }
        return count == 0 ? new Dictionary<string, double>() : new Dictionary<string, double>
        {
            ["valLoss"] = loss / count, ["valMimAccuracy"] = acc1 / count, ["valMimAccuracyAggregated"] = acc2 / count,
        };
    }
}
