using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Training;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class TeacherTrainerTests
{
    private const int Batch = 8;

    [Fact]
    public void LearnsTwoPatterns_AndReportsAccuracy()
    {
        TrainerBase.SeedEverything(5);
        using var model = new ConvTeacher(ConvTeacherConfig.Micro(numClasses: 2) with { ImgSize = 32, DropoutRate = 0 });
        var train = new SyntheticData(4, 1, (g, _) => SyntheticData.Stripes(g, Batch, 32));
        var validation = new SyntheticData(2, 99, (g, _) => SyntheticData.Stripes(g, Batch, 32)) { SameEveryEpoch = true };
        var progress = new RecordingProgress();
        var result = new TeacherTrainer(model, new TeacherTrainerOptions { Epochs = 6, LearningRate = 5e-3, WarmupSteps = 2, Seed = 3 })
            .Run(train, validation, progress);

        Assert.Equal(TrainingStatus.Completed, result.Status);
        Assert.Same(model, result.Model);
        var epochs = progress.Reports.Where(r => r.Event == TrainingEvent.EpochEnd).ToList();
        Assert.Equal(6, epochs.Count);
        Assert.All(progress.Reports, r => Assert.Equal("teacher", r.Stage));
        Assert.True(epochs[^1].Metrics["loss"] < epochs[0].Metrics["loss"], $"loss {epochs[0].Metrics["loss"]} → {epochs[^1].Metrics["loss"]}");
        Assert.True(result.Metrics["accuracy"] >= 0.9, $"held-out accuracy {result.Metrics["accuracy"]}");
    }
}
