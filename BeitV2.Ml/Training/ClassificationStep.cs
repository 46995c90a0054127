using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>The parts of a supervised classification step the classifier trainers share: the labels and the step's report.</summary>
internal static class ClassificationStep
{
    /// <summary>The batch's (B) class ids as int64.</summary>
    /// <exception cref="InvalidOperationException">the batch has no labels.</exception>
    public static Tensor Labels(TrainingBatch batch, string training) =>
        batch.Labels?.to(ScalarType.Int64) ?? throw new InvalidOperationException($"{training} needs batches with Labels (B) class ids.");

    /// <summary>The step's loss with its <c>trainAccuracy</c> (top-1 of <paramref name="logits"/>).</summary>
    public static StepOutput Output(Tensor loss, Tensor logits, Tensor labels)
    {
        double acc;
        using (no_grad()) acc = logits.argmax(-1).eq(labels).to(float64).mean().item<double>();
        return new StepOutput(loss, new Dictionary<string, double> { ["trainAccuracy"] = acc });
    }
}
