using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// From-scratch initialisation. TorchSharp 0.107's <c>nn.init.trunc_normal_</c> fills a constant
/// (it multiplies by the mean and adds the std), which made every BEiT weight 0.02; these tests pin
/// our replacement to the reference distribution and check that fresh models are not degenerate.
/// </summary>
public class InitializationTests
{
    private const int Samples = 200_000;

    [Fact]
    public void TruncatedNormal_WideCutoffs_IsTheNormalDistribution()
    {
        manual_seed(11);
        using var t = TruncatedNormal.Fill_(empty(Samples), 0, 0.02, -2, 2);
        // ±2 absolute is 100σ: effectively no truncation (the fine-tuning recipe).
        Assert.InRange(t.mean().item<float>(), -0.0005, 0.0005);
        Assert.InRange(t.std().item<float>(), 0.0198, 0.0202);
        Assert.True(t.abs().max().item<float>() > 0.07, "4σ values must occur in 200k samples");
    }

    [Fact]
    public void TruncatedNormal_CutAtOneStd_HasTheTruncatedNormalMoments()
    {
        manual_seed(12);
        const double std = 0.02;
        using var t = TruncatedNormal.Fill_(empty(Samples), 0, std, -std, std);
        // Standard normal truncated to [−1, 1]: variance 1 − 2φ(1)/(2Φ(1) − 1) = 0.29112, std 0.53956.
        Assert.InRange(t.std().item<float>() / std, 0.535, 0.544);
        Assert.True(t.min().item<float>() >= -std && t.max().item<float>() <= std);
        // Density near the cut-offs is about φ(0.975)/φ(0.025) = 0.62 of the centre: no pile-up from clamping.
        using var edge = t.abs().gt(0.95 * std).to_type(float32).mean();
        using var centre = t.abs().lt(0.05 * std).to_type(float32).mean();
        Assert.InRange(edge.item<float>() / centre.item<float>(), 0.55, 0.67);
    }

    [Fact]
    public void TruncatedNormal_ShiftedMean_StaysInsideTheCutoffs()
    {
        manual_seed(13);
        using var t = TruncatedNormal.Fill_(empty(Samples), 1.0, 0.5, 0.0, 3.0);
        Assert.True(t.min().item<float>() >= 0 && t.max().item<float>() <= 3);
        // N(1, 0.5²) cut at 0 and 3 (−2σ, +4σ): mean 1 + 0.5·φ(2)/(Φ(4) − Φ(−2)) = 1.0276.
        Assert.InRange(t.mean().item<float>(), 1.024, 1.031);
    }

    [Fact]
    public void FreshModels_HaveNoConstantWeightMatrices()
    {
        manual_seed(14);
        using var vit = new BeitVisionTransformer(VitConfig.Micro() with { UseAbsPosEmb = true });
        using var mim = new BeitMim(MimConfig.Micro() with { UseAbsPosEmb = true });
        using var vqkd = new VqkdTokenizer(VqkdConfig.Micro());
        var constant = new List<string>();
        foreach (var (prefix, model) in new (string, TorchSharp.torch.nn.Module)[] { ("vit", vit), ("mim", mim), ("vqkd", vqkd) })
        {
            foreach (var (name, p) in model.named_parameters())
            {
                // Weight matrices, conv kernels and the [CLS] / [MASK] / position embeddings are drawn at random.
                var random = name.EndsWith("weight") && p.dim() >= 2 || name is "cls_token" or "mask_token" or "pos_embed"
                             || name.EndsWith(".cls_token") || name.EndsWith(".pos_embed");
                if (!random || !p.requires_grad) continue;
                using var std = p.detach().std();
                if (!(std.item<float>() > 0)) constant.Add($"{prefix}:{name}");
            }
        }
        Assert.True(constant.Count == 0, "constant after init: " + string.Join(", ", constant));
    }

    [Fact]
    public void FreshVit_LinearWeights_HaveTheReferenceStd()
    {
        manual_seed(15);
        using var vit = new BeitVisionTransformer(VitConfig.Micro());
        // Fine-tune init: trunc_normal(std 0.02) on every Linear; fc1 is not rescaled.
        using var fc1 = vit.get_parameter("blocks.0.mlp.fc1.weight")!.detach();
        Assert.InRange(fc1.std().item<float>(), 0.018, 0.022);
        // fix_init_weight divides the first block's attn.proj by √2.
        using var proj = vit.get_parameter("blocks.0.attn.proj.weight")!.detach();
        Assert.InRange(proj.std().item<float>() * Math.Sqrt(2), 0.017, 0.023);
        // The head is scaled by init_scale 0.001.
        using var head = vit.get_parameter("head.weight")!.detach();
        Assert.InRange(head.std().item<float>(), 0.000017, 0.000023);
    }
}
