using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>Our own backbone as a VQ-KD teacher, end to end through the tokenizer's training forward.</summary>
public sealed class TeacherTests
{
    [Fact]
    public void OwnBackboneTeachesATokenizer()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var backbone = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0));
        using var teacher = new BackboneTeacher(backbone);
        Assert.Equal("beitv2", teacher.Kind);
        Assert.Equal(32, teacher.OutputDim);
        Assert.All(backbone.parameters(), p => Assert.False(p.requires_grad));

        using var tokenizer = new VqkdTokenizer(VqkdConfig.Micro(decoderOutDim: teacher.OutputDim));
        tokenizer.train();
        var images = rand(2, 3, 32, 32);
        var pre = tokenizer.PreProcess(images);

        // The targets are the backbone's patch features of the ImageNet-normalised image.
        var scaled = (((pre + 1) * 127.5).clamp(0, 255) / 255 - tensor(ScalingLayer.ImageNetMean).view(1, 3, 1, 1))
                     / tensor(ScalingLayer.ImageNetStd).view(1, 3, 1, 1);
        var expected = backbone.ForwardPatchTokens(scaled);
        var targets = teacher.GetRegressTarget(pre);
        Assert.Equal(new long[] { 2, 16, 32 }, targets.shape);
        Assert.True(targets.allclose(expected, rtol: 1e-5, atol: 1e-6));
        Assert.False(targets.requires_grad);

        using var output = tokenizer.Forward(images, teacher);
        Assert.True(output.Loss.requires_grad);
        Assert.True(output.RecLoss.item<float>() is > 0 and < 2);
    }
}
