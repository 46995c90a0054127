using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// The fused inference attention (<see cref="Attention.UseFusedInference"/>: libtorch's scaled-dot-product
/// attention with the relative biases as an additive mask) against the reference's explicit path, which
/// runs whenever gradients are recorded. The parity fixtures exercise the fused path too (they run in
/// inference mode); these tests use random weights and relative tables, which fresh models lack.
/// </summary>
public sealed class FusedAttentionTests
{
    /// <summary>
    /// Every parameter random (relative tables included, which start at zero): with the reference's small
    /// init and 0.1 layer scale, a wrong bias would hardly move the outputs.
    /// </summary>
    private static void RandomiseWeights(nn.Module model, int seed)
    {
        using var g = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (_, p) in model.named_parameters())
            p.copy_(randn(p.shape, generator: g) * 0.3);
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        var atol = 1e-5 * Math.Max(1, expected.abs().max().item<float>());
        var excess = ((actual - expected).abs() - (atol + 1e-5 * expected.abs())).max().item<float>();
        Assert.True(excess <= 0, $"fused and explicit attention differ beyond rtol 1e-5 / atol {atol:G3} (by {excess:G3})");
    }

    [Fact]
    public void Vit_WithPerLayerRelativeBias_FusedInferenceMatchesTheExplicitPath()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        using var model = new BeitVisionTransformer(VitConfig.Micro(7));
        RandomiseWeights(model, 12);
        model.eval();
        var images = randn(3, 3, 32, 32);

        var explicitPath = model.forward(images).detach(); // gradients recorded → explicit attention
        Tensor fused;
        using (inference_mode()) fused = model.forward(images);
        AssertClose(explicitPath, fused);
    }

    [Fact]
    public void Mim_WithSharedRelativeBias_FusedInferenceMatchesTheExplicitPath()
    {
        using var scope = NewDisposeScope();
        manual_seed(13);
        using var model = new BeitMim(MimConfig.Micro(32));
        RandomiseWeights(model, 14);
        model.eval();
        var images = randn(2, 3, 32, 32);
        var mask = zeros(2, 16, dtype: ScalarType.Bool);
        mask[.., ..6] = tensor(true);

        var explicitPath = model.forward(images, mask).Select(t => t.detach()).ToArray();
        Tensor[] fused;
        using (inference_mode()) fused = model.forward(images, mask);
        for (var i = 0; i < fused.Length; i++) AssertClose(explicitPath[i], fused[i]);
    }

    [Fact]
    public void CachedInferenceBias_FollowsInPlaceChangesOfTheRelativeTables()
    {
        // The inference path keeps each block's looked-up bias; a weight update (optimiser step, loaded state
        // dict) changes the tables in place and must show in the very next inference forward.
        using var scope = NewDisposeScope();
        manual_seed(15);
        using var model = new BeitVisionTransformer(VitConfig.Micro(7));
        RandomiseWeights(model, 16);
        model.eval();
        var images = randn(2, 3, 32, 32);
        Tensor before;
        using (inference_mode()) before = model.forward(images);
        using (inference_mode()) AssertClose(before, model.forward(images));   // served from the cache

        using (no_grad())
            foreach (var (name, p) in model.named_parameters().Where(p => p.name.EndsWith(RelativePositionBias.TableName)))
                p.add_(randn(p.shape) * 0.5);
        var explicitPath = model.forward(images).detach();
        Tensor after;
        using (inference_mode()) after = model.forward(images);
        AssertClose(explicitPath, after);
        Assert.True((after - before).abs().max().item<float>() > 1e-3, "changing the relative tables must change the output");
    }
}
