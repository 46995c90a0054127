using BeitV2.Ml.Models.Teachers;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Options of <see cref="TeacherTrainer"/>: AdamW with a cosine schedule and label smoothing.</summary>
public sealed record TeacherTrainerOptions : TrainerOptions
{
    public TeacherTrainerOptions()
    {
        LearningRate = 3e-3;
        MinLearningRate = 1e-5;
        WeightDecay = 0.05;
    }

    /// <summary>Label smoothing of the cross-entropy.</summary>
    public double LabelSmoothing { get; init; } = 0.1;

    internal override void Validate()
    {
        base.Validate();
        Require(LabelSmoothing is >= 0 and < 1, "label smoothing must be in [0, 1)");
    }
}

/// <summary>
/// Supervised training of a <see cref="ConvTeacher"/>: the stand-in for the CLIP / DINO teacher that VQ-KD distils
/// (BEiT v2 §2.1) where neither can be downloaded. A small convnet reaches in minutes on a CPU the accuracy a small ViT
/// needs many epochs for, and the tokenizer and everything after it can only be as good as this teacher.
/// Evaluation: <c>accuracy</c>, <c>valLoss</c>; step metric <c>trainAccuracy</c>.
/// </summary>
public sealed class TeacherTrainer : TrainerBase
{
    private readonly ConvTeacher model;

    public TeacherTrainer(ConvTeacher model, TeacherTrainerOptions options) : base(TrainingStages.Teacher, options)
    {
        this.model = model;
        Options = options;
    }

    public TeacherTrainerOptions Options { get; }
    public ConvTeacher Model => model;

    public TrainingResult Run(ITrainingData train, ITrainingData? validation = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default) => RunCore(train, validation, progress, cancellationToken);

    private protected override nn.Module CheckpointModule => model;

    private protected override IReadOnlyList<ParameterGroup> CreateParameterGroups() => ParameterGroups.Build(model, Options.WeightDecay);

    private protected override void MoveToDevice() => model.to(Device);

    private protected override void SetTrainMode() => model.train();

    private protected override StepOutput TrainStep(TrainingBatch batch, long step)
    {
        var labels = ClassificationStep.Labels(batch, "Teacher training");
        var logits = model.forward(batch.Images);
        var loss = Losses.LabelSmoothingCrossEntropy(logits, labels, Options.LabelSmoothing);
        return ClassificationStep.Output(loss, logits, labels);
    }

    private protected override Dictionary<string, double> Evaluate(ITrainingData validation, CancellationToken cancellationToken)
    {
        model.eval();
        return ClassificationEvaluation.Run(validation, Device, model.forward, model.Config.NumClasses, cancellationToken);
    }
}
