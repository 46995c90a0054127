namespace BeitV2.Ml.Training;

/// <summary>
/// The names of the training stages, one per trainer: <see cref="TrainerBase.Stage"/>, the <c>stage</c> of
/// <see cref="TrainingProgress"/> and of training checkpoints (a resume checks it), and the <c>trained_by</c>
/// of a trained model's metadata. They are stored in files, so they never change.
/// </summary>
/// <remarks>
/// A stage is what a trainer does, not a model kind: the <c>tokenizer</c> stage trains a tokenizer, the
/// <c>pretrain</c> stage a MIM model, <c>probe</c> a linear probe on a frozen backbone, <c>finetune</c> a
/// classifier and <c>segmentation</c> a segmenter.
/// </remarks>
public static class TrainingStages
{
    public const string Tokenizer = "tokenizer";
    public const string Pretrain = "pretrain";
    public const string Probe = "probe";
    public const string FineTune = "finetune";
    public const string Segmentation = "segmentation";
    /// <summary>Supervised training of a convolutional stand-in teacher (<see cref="TeacherTrainer"/>).</summary>
    public const string Teacher = "teacher";

    public static IReadOnlyList<string> All { get; } = [Tokenizer, Pretrain, Probe, FineTune, Segmentation, Teacher];
}
