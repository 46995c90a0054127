using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Options of <see cref="TokenizerTrainer"/> (unilm beit2 TOKENIZER.md and run_vqkd_training.py). Defaults are small; <see cref="Reference"/> is the published recipe.</summary>
public sealed record TokenizerTrainerOptions : TrainerOptions
{
    public TokenizerTrainerOptions()
    {
        LearningRate = 2e-4;
        MinLearningRate = 1e-5;
        WeightDecay = 1e-4;
        Beta1 = 0.9;
        Beta2 = 0.99;
    }

    /// <summary>
    /// Classes of the validation labels for <see cref="CodeClassPurity"/> (<c>valCodeClassPurity</c> and its shuffled
    /// baseline); 0 = not measured. Validation batches without labels are skipped.
    /// </summary>
    public int PurityClasses { get; init; }

    /// <summary>Collapse warning when fewer than this fraction of the codes is used in an epoch.</summary>
    public double CollapseUsageThreshold { get; init; } = 0.05;
    /// <summary>Collapse warning when one code takes more than this share of the epoch's assignments.</summary>
    public double CollapseDominantShare { get; init; } = 0.5;

    /// <summary>
    /// TOKENIZER.md + run_vqkd_training.py: 100 epochs, warmup 10, base lr 5e-5 scaled by total batch / 128
    /// (2e-4 at the published 8 × 64 = 512), min lr 1e-5 (not scaled), AdamW (0.9, 0.99), eps 1e-8,
    /// weight decay 1e-4, no gradient clipping.
    /// </summary>
    public static TokenizerTrainerOptions Reference(int totalBatchSize = 512) => new()
    {
        Epochs = 100, WarmupEpochs = 10, LearningRate = 5e-5 * totalBatchSize / 128.0, MinLearningRate = 1e-5,
        WeightDecay = 1e-4, Beta1 = 0.9, Beta2 = 0.99, Eps = 1e-8, ClipGrad = null,
    };

    internal override void Validate()
    {
        base.Validate();
        Require(CollapseUsageThreshold is >= 0 and <= 1 && CollapseDominantShare is > 0 and <= 1, "collapse thresholds must be fractions");
    }
}

/// <summary>
/// Trains the VQ-KD tokenizer (engine_for_vqkd): targets from a frozen teacher
/// (<see cref="IVqkdTeacher.GetRegressTarget"/>, or <see cref="TrainingBatch.Targets"/> when no teacher
/// is given), loss = commitment + cosine reconstruction; the codebook is initialised by k-means on the
/// first batch and then follows the EMA (the quantizer does both in train mode); the usage statistic
/// is reset at every epoch start.
/// </summary>
/// <remarks>
/// Batches: <see cref="TrainingBatch.Images"/> in [0, 1] (the tokenizer maps them to [−1, 1]).
/// Epoch metrics: <c>codebookUsage</c> (fraction of codes assigned at least once in the epoch),
/// <c>usedCodes</c>, <c>unusedCodes</c> (zero entries of the quantizer's usage statistic, the
/// reference's "Unused code"), <c>perplexity</c> (exp of the entropy of the epoch's code histogram),
/// <c>maxCodeShare</c>, <c>reconstructionCosine</c> (1 − rec loss, epoch mean), <c>commitLoss</c>,
/// <c>recLoss</c>, and <c>codebookCollapse</c> (1 when usage is below
/// <see cref="TokenizerTrainerOptions.CollapseUsageThreshold"/> or one code takes more than
/// <see cref="TokenizerTrainerOptions.CollapseDominantShare"/> of the assignments; a warning is logged).
/// Evaluation (held-out split): <c>valLoss</c>, <c>valReconstructionCosine</c>, <c>valUnusedCodes</c>,
/// <c>valCodebookUsage</c>, computed in eval mode with the statistic reset first, as the reference's
/// evaluate does; the training statistic is restored afterwards.
/// </remarks>
public sealed class TokenizerTrainer : TrainerBase
{
    private const string HistogramKey = "codeHistogram";
    private readonly VqkdTokenizer model;
    private readonly IVqkdTeacher? teacher;

    public TokenizerTrainer(VqkdTokenizer model, IVqkdTeacher? teacher, TokenizerTrainerOptions options) : base(TrainingStages.Tokenizer, options)
    {
        this.model = model;
        this.teacher = teacher;
        Options = options;
        if (teacher is not null && teacher.OutputDim != model.Config.DecoderOutDim)
            throw new ArgumentException(
                $"The teacher gives {teacher.OutputDim}-d targets but the tokenizer reconstructs {model.Config.DecoderOutDim}-d ones (decoder_out_dim).");
    }

    public TokenizerTrainerOptions Options { get; }
    public VqkdTokenizer Model => model;

    /// <summary>
    /// What a loaded model teaches as, and the images it sees: a BEiT classifier or backbone regresses its own
    /// features (<see cref="BackboneTeacher"/>, at its image and patch size); CLIP and DINO teachers see 224 px in 16 px patches.
    /// </summary>
    /// <param name="name">how the error names the model.</param>
    public static (IVqkdTeacher Teacher, int ImageSize, int PatchSize) TeacherOf(nn.Module model, string name) => model switch
    {
        Models.BeitVisionTransformer vit => (new BackboneTeacher(vit), vit.Config.ImgSize, vit.Config.PatchSize),
        ConvTeacher conv => (conv, conv.Config.ImgSize, conv.Config.PatchSize),
        IVqkdTeacher t => (t, 224, 16),
        _ => throw new ArgumentException($"'{name}' ({model.GetType().Name}) cannot serve as a VQ-KD teacher."),
    };

    /// <summary>
    /// A tokenizer to distil <paramref name="teacher"/>: <paramref name="config"/>'s codebook and widths, its decoder
    /// regressing the teacher's features, its encoder on <paramref name="imageSize"/> px images in the teacher's
    /// <paramref name="patchSize"/> px patches (the tokenizer and its teacher see the same patch grid).
    /// </summary>
    public static VqkdTokenizer CreateModel(VqkdConfig config, IVqkdTeacher teacher, int imageSize, int patchSize) => new(config with
    {
        DecoderOutDim = teacher.OutputDim,
        Encoder = config.Encoder with { ImgSize = imageSize, PatchSize = patchSize },
        Decoder = config.Decoder with { ImgSize = imageSize / patchSize },
    });

    public TrainingResult Run(ITrainingData train, ITrainingData? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => RunCore(train, validation, progress, cancellationToken);

    private protected override nn.Module CheckpointModule => model;

    private protected override IReadOnlyList<ParameterGroup> CreateParameterGroups() => ParameterGroups.ForTokenizer(model, Options.WeightDecay);

    private protected override void MoveToDevice()
    {
        model.to(Device);
        if (teacher is not null)
        {
            teacher.Module.to(Device);
            teacher.Module.eval();
            foreach (var p in teacher.Module.parameters()) p.requires_grad = false;
        }
    }

    private protected override void SetTrainMode()
    {
        model.train();
        teacher?.Module.eval();
    }

    private protected override void OnEpochStart(int epoch) => model.Quantizer.ResetUsage();

    private protected override StepOutput TrainStep(TrainingBatch batch, long step)
    {
        var output = Forward(batch);
        Accumulate(HistogramKey, bincount(output.Encoding.Indices.flatten(), minlength: model.Config.NEmbed));
        double rec, commit;
        using (no_grad())
        {
            rec = output.RecLoss.to(float64).item<double>();
            commit = output.Encoding.CommitLoss.to(float64).item<double>();
        }
        return new StepOutput(output.Loss, new Dictionary<string, double>
        {
            ["recLoss"] = rec, ["commitLoss"] = commit, ["reconstructionCosine"] = 1 - rec,
        });
    }

    private VqkdOutput Forward(TrainingBatch batch)
    {
        if (teacher is not null) return model.Forward(batch.Images, teacher);
        if (batch.Targets is null)
            throw new InvalidOperationException("The tokenizer trainer has no teacher, so every batch must carry Targets (B, N, decoder_out_dim).");
        return model.Forward(batch.Images, batch.Targets);
    }

    private protected override IReadOnlyList<double>? ProgressCodeCounts() =>
        EpochState.TryGetValue(HistogramKey, out var histogram) ? histogram.ToArray() : new double[model.Config.NEmbed];

    // The codebook's usage and perplexity so far in this epoch, at every report: the job page charts them as lines.
    private protected override IReadOnlyDictionary<string, double> ProgressMetrics()
    {
        if (!EpochState.TryGetValue(HistogramKey, out var histogram) || histogram.Sum() <= 0) return new Dictionary<string, double>();
        var stats = CodebookStatistics.FromHistogram(histogram);
        return new Dictionary<string, double>
        {
            ["codebookUsage"] = stats.Usage, ["usedCodes"] = stats.UsedCodes, ["perplexity"] = stats.Perplexity, ["maxCodeShare"] = stats.MaxShare,
        };
    }

    private protected override void OnEpochEnd(int epoch, Dictionary<string, double> metrics)
    {
        var n = model.Config.NEmbed;
        if (EpochState.TryGetValue(HistogramKey, out var histogram))
        {
            var stats = CodebookStatistics.FromHistogram(histogram);
            metrics["codebookUsage"] = stats.Usage;
            metrics["usedCodes"] = stats.UsedCodes;
            metrics["perplexity"] = stats.Perplexity;
            metrics["maxCodeShare"] = stats.MaxShare;
            var collapsed = stats.Usage < Options.CollapseUsageThreshold || stats.MaxShare > Options.CollapseDominantShare;
            metrics["codebookCollapse"] = collapsed ? 1 : 0;
            if (collapsed)
                Log(FormattableString.Invariant($"WARNING: codebook collapse suspected in epoch {epoch + 1}: {stats.UsedCodes} of {n} codes used ({stats.Usage:P1}), ")
                    + FormattableString.Invariant($"the most frequent code takes {stats.MaxShare:P1} of the assignments, perplexity {stats.Perplexity:F1}. ")
                    + "Known causes: too little or too uniform data, a too large codebook or code dimension (see unilm #877, #936, #1556).");
        }
        metrics["unusedCodes"] = model.Quantizer.UnusedCodes();
    }

    private protected override Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken)
    {
        using var saved = model.Quantizer.ClusterSize.clone();
        model.eval();
        var track = model.Quantizer.TrackUsageInEval;
        model.Quantizer.TrackUsageInEval = true;
        model.Quantizer.ResetUsage();
        double lossSum = 0, recSum = 0;
        var count = 0;
        var histogram = new double[model.Config.NEmbed];
        var purity = new CodeClassPurity(model.Config.NEmbed, Options.PurityClasses);
        try
        {
            foreach (var b in validation.GetBatches(0))
            {
                using var batch = b;
                if (cancellationToken.IsCancellationRequested) break;
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                var onDevice = new TrainingBatch { Images = batch.Images.to(Device), Targets = batch.Targets?.to(Device) };
                using var output = Forward(onDevice);
                lossSum += output.Loss.to(float64).item<double>();
                recSum += output.RecLoss.to(float64).item<double>();
                var bins = bincount(output.Encoding.Indices.flatten(), minlength: model.Config.NEmbed).to(float64).cpu().data<double>().ToArray();
                for (var i = 0; i < bins.Length; i++) histogram[i] += bins[i];
                if (batch.Labels is { } labels && Options.PurityClasses > 0)
                {
                    var indices = output.Encoding.Indices.reshape(labels.shape[0], -1).to(ScalarType.Int64).cpu();
                    var perImage = indices.shape[1];
                    var flat = indices.data<long>().ToArray();
                    var ids = labels.to(ScalarType.Int64).cpu().data<long>().ToArray();
                    for (var i = 0; i < ids.Length; i++) purity.Add(flat.AsSpan(i * (int)perImage, (int)perImage), ids[i]);
                }
                count++;
            }
            var unused = model.Quantizer.UnusedCodes();
            var stats = CodebookStatistics.FromHistogram(histogram);
            var result = count == 0 ? new Dictionary<string, double>() : new Dictionary<string, double>
            {
                ["valLoss"] = lossSum / count, ["valReconstructionCosine"] = 1 - recSum / count, ["valUnusedCodes"] = unused,
                ["valCodebookUsage"] = stats.Usage, ["valPerplexity"] = stats.Perplexity,
            };
            if (count > 0 && purity.Images > 0)
            {
                var (pure, shuffled) = purity.Compute((int)Options.Seed);
                result["valCodeClassPurity"] = pure;
                result["valCodeClassPurityShuffled"] = shuffled;
            }
            return result;
        }
        finally
        {
            model.Quantizer.TrackUsageInEval = track;
            using (no_grad()) model.Quantizer.ClusterSize.copy_(saved);
        }
    }
}

/// <summary>Statistics of a code histogram.</summary>
/// <param name="Usage">fraction of codes with a non-zero count.</param>
/// <param name="Perplexity">exp(−Σ p log p) of the normalised histogram (1 = one code, N = uniform).</param>
/// <param name="MaxShare">largest count / total.</param>
public sealed record CodebookStatistics(int UsedCodes, double Usage, double Perplexity, double MaxShare)
{
    public static CodebookStatistics FromHistogram(IReadOnlyList<double> counts)
    {
        var total = counts.Sum();
        if (counts.Count == 0 || total <= 0) return new CodebookStatistics(0, 0, 0, 0);
        var used = counts.Count(c => c > 0);
        double entropy = 0, max = 0;
        foreach (var c in counts)
        {
            if (c <= 0) continue;
            var p = c / total;
            entropy -= p * Math.Log(p);
            max = Math.Max(max, p);
        }
        return new CodebookStatistics(used, (double)used / counts.Count, Math.Exp(entropy), max);
    }
}
