using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

public class ConvTeacherTests
{
    private static ConvTeacher NewTeacher(int seed = 3)
    {
        TrainerBase.SeedEverything(seed);
        var teacher = new ConvTeacher(ConvTeacherConfig.Micro(numClasses: 10));
        teacher.eval();
        return teacher;
    }

    [Fact]
    public void ClassEvidenceTargets_AreTheHeadOnEachPatch_AndAverageToTheImageLogits()
    {
        using var teacher = NewTeacher();
        using var scope = NewDisposeScope();
        var pre = rand(2, 3, 28, 28) * 2 - 1; // the tokenizer's [−1, 1] input
        var logits = teacher.forward(teacher.Scale(pre));
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        var targets = teacher.GetRegressTarget(pre);
        Assert.Equal(new long[] { 2, 49, 10 }, targets.shape); // 28 px at stride 4: the 7×7 grid of 4 px patches
        Assert.Equal(10, teacher.OutputDim);
        Assert.Equal(4, teacher.Config.PatchSize);
        // The head is linear and the classifier pools by the mean, so the patches' evidence averages to the logits.
        Assert.True(allclose(targets.mean([1L]), logits, rtol: 1e-4, atol: 1e-5));
        Assert.False(targets.requires_grad);
    }

    [Fact]
    public void FeatureTargets_AreTheLastMapBeforeItsRelu_InRowMajorPatchOrder()
    {
        TrainerBase.SeedEverything(3);
        using var teacher = new ConvTeacher(ConvTeacherConfig.Micro() with { Targets = ConvTeacherConfig.FeatureTargets });
        teacher.eval();
        using var scope = NewDisposeScope();
        var pre = rand(2, 3, 28, 28) * 2 - 1;
        var targets = teacher.GetRegressTarget(pre);
        Assert.Equal(new long[] { 2, 49, 16 }, targets.shape);
        var map = teacher.PreActivationMap(teacher.Scale(pre)); // (2, 16, 7, 7), signed
        Assert.True(map.lt(0).any().item<bool>());
        Assert.True(allclose(nn.functional.relu(map), teacher.FeatureMap(teacher.Scale(pre)), rtol: 1e-5, atol: 1e-6));
        // Patch (row 2, col 5) of image 1 is target 2·7 + 5.
        Assert.True(allclose(targets[1, 2 * 7 + 5], map[1, .., 2, 5]));
    }

    [Fact]
    public void IsAVqkdTeacherOnItsOwnGrid()
    {
        using var teacher = NewTeacher();
        var (asTeacher, size, patch) = TokenizerTrainer.TeacherOf(teacher, "conv");
        Assert.Same(teacher, asTeacher);
        Assert.Equal((28, 4), (size, patch));
    }

    [Fact]
    public void PackageRoundTrip_GivesTheSameLogits_AndTheTeacherKind()
    {
        using var teacher = NewTeacher();
        var dir = Path.Combine(Path.GetTempPath(), "conv-teacher-" + Guid.NewGuid().ToString("N"));
        try
        {
            ModelPackage.Save(teacher, dir);
            using var loaded = ModelPackage.Load(dir);
            Assert.Equal(ModelKind.ConvTeacher, loaded.Manifest.Kind);
            var copy = Assert.IsType<ConvTeacher>(loaded.Module);
            copy.eval();
            using var scope = NewDisposeScope();
            var x = randn(3, 3, 28, 28);
            Assert.True(allclose(teacher.forward(x), copy.forward(x)));
            Assert.Equal(teacher.Config.Widths, copy.Config.Widths);
            Assert.Empty(ModelCatalog.Default.OperationsOf(copy)); // a teacher is not served
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData(30)]
    [InlineData(0)]
    public void RejectsAnImageSizeOffItsGrid(int size)
    {
        var e = Assert.Throws<ArgumentException>(() => (ConvTeacherConfig.Micro() with { ImgSize = size }).Validate());
        Assert.Contains("multiple of the feature stride 4", e.Message);
    }
}
