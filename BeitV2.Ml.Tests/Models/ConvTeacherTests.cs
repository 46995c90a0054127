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

    /// <summary>
    /// libtorch's CPU (oneDNN) convolution backward reads uninitialised memory for the input gradient of a 3×3 convolution
    /// whose output channels are not a multiple of its SIMD block (16 floats with AVX-512, 8 with AVX2): the channel padding
    /// of its blocked layout. Whatever the allocator hands back there ends up in the gradient, NaN when the memory last held
    /// NaN, so a training step could diverge depending on what other threads had freed. Here freed memory is filled with
    /// NaN before every backward; the presets' widths are multiples of 16 and their gradients stay finite.
    /// </summary>
    [Theory]
    [InlineData("micro")]
    [InlineData("fashion")]
    public void TrainingGradients_DoNotDependOnWhatFreedMemoryHeld(string preset)
    {
        var config = preset == "micro" ? ConvTeacherConfig.Micro() : ConvTeacherConfig.Fashion();
        TrainerBase.SeedEverything(5);
        using var teacher = new ConvTeacher(config with { DropoutRate = 0 });
        teacher.train();
        var generator = new Generator(5);
        for (var step = 0; step < 4; step++)
        {
            using var scope = NewDisposeScope();
            var images = randn([16, 3, 28, 28], generator: generator);
            var labels = randint(0, 10, [16], generator: generator);
            var loss = nn.functional.cross_entropy(teacher.forward(images), labels);
            // Freed chunks full of NaN: the backward's allocations get them back.
            for (var n = 1L << 10; n <= 1L << 19; n <<= 1)
                for (var k = 0; k < 2; k++) full([n], float.NaN).Dispose();
            loss.backward();
            foreach (var (name, p) in teacher.named_parameters())
                Assert.True(p.grad!.isfinite().all().item<bool>(), $"step {step}: the gradient of {name} is not finite");
            teacher.zero_grad();
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
