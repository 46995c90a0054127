using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

public class ClassificationMetricsTests
{
    /// <summary>(B, K) logits whose argmax is <paramref name="predicted"/>.</summary>
    private static Tensor Logits(int classes, params int[] predicted)
    {
        var data = new float[predicted.Length * classes];
        for (var i = 0; i < predicted.Length; i++)
        {
            for (var k = 0; k < classes; k++) data[i * classes + k] = -k * 0.01f; // a fixed runner-up order: 0, 1, 2, …
            data[i * classes + predicted[i]] = 5;
        }
        return tensor(data, new long[] { predicted.Length, classes });
    }

    [Fact]
    public void ConfusionMatrix_CountsTrueAgainstPredicted_OverSeveralBatches()
    {
        var m = new ClassificationMetrics(3);
        using (var logits = Logits(3, 0, 1, 1, 2))
        using (var labels = tensor(new long[] { 0, 1, 2, 2 }))
            m.Update(logits, labels);
        using (var logits = Logits(3, 0, 0))
        using (var labels = tensor(new long[] { 1, 0 }))
            m.Update(logits, labels);

        // true 0: predicted 0 twice; true 1: predicted 1 once, 0 once; true 2: predicted 1 once, 2 once.
        Assert.Equal([[2L, 0, 0], [1L, 1, 0], [0L, 1, 1]], m.Confusion);
        Assert.Equal(6, m.Samples);
        Assert.Equal(4, m.Correct);
        Assert.Equal(4.0 / 6, m.Accuracy, 12);
        Assert.Equal([2L, 2, 2], m.Support);
        Assert.Equal([1.0, 0.5, 0.5], m.ClassAccuracy);
        Assert.True(double.IsNaN(m.Top5Accuracy)); // fewer than five classes
        var metrics = m.ToValidationMetrics();
        Assert.Equal(4.0 / 6, metrics["accuracy"], 12);
        Assert.Equal(6, metrics["valSamples"]);
        Assert.False(metrics.ContainsKey("top5Accuracy"));
    }

    [Fact]
    public void ClassWithoutImages_HasNoAccuracy_AndTop5CountsTheRunnersUp()
    {
        var m = new ClassificationMetrics(6);
        // Logits rank the predicted class first, then 0, 1, 2, … : label 5 is outside the top five of a prediction of 0.
        using (var logits = Logits(6, 0, 0, 3))
        using (var labels = tensor(new long[] { 0, 5, 4 }))
            m.Update(logits, labels);
        Assert.Equal(1.0 / 3, m.Accuracy, 12);
        Assert.Equal(2.0 / 3, m.Top5Accuracy, 12); // 0 (hit), 5 (not in 0,1,2,3,4), 4 (in 3,0,1,2,4)
        var perClass = m.ClassAccuracy;
        Assert.Equal(1.0, perClass[0]);
        Assert.True(double.IsNaN(perClass[1]));
        Assert.Equal(0.0, perClass[4]);
        Assert.Equal(0.0, perClass[5]);
    }

    [Fact]
    public void LabelsOutsideTheClasses_AreRejected()
    {
        var m = new ClassificationMetrics(3);
        using var logits = Logits(3, 0);
        using var labels = tensor(new long[] { 3 });
        Assert.Throws<ArgumentException>(() => m.Update(logits, labels));
        Assert.Equal(0, m.Samples);
        Assert.True(double.IsNaN(m.Accuracy));
        Assert.Empty(m.ToValidationMetrics());
    }
}
