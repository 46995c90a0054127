using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>The tokenizer's serving path: the reference's token ids, without the reference's eval-mode state writes.</summary>
public sealed class VqkdServingTests
{
    private static bool Identical(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var same = a.eq(b).all();
        return same.item<bool>();
    }

    private static Dictionary<string, Tensor> State(nn.Module module) =>
        module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static void AssertSame(Dictionary<string, Tensor> expected, nn.Module module)
    {
        var actual = module.state_dict();
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, value) in expected) Assert.True(Identical(value, actual[name]), $"{name} changed");
    }

    [Fact]
    public void TokenIds_AreTheCodebookIndices_AndLeaveEveryBufferUnchanged()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        using var tokenizer = new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false });
        tokenizer.eval();
        var images = rand(3, 3, tokenizer.Config.Encoder.ImgSize, tokenizer.Config.Encoder.ImgSize);
        var before = State(tokenizer);
        using (inference_mode())
        {
            var served = tokenizer.TokenIds(tokenizer.PreProcess(images));
            AssertSame(before, tokenizer);

            // The reference's get_codebook_indices (kept for training and parity) updates the usage statistic in eval mode.
            var reference = tokenizer.GetCodebookIndices(images);
            Assert.True(Identical(served, reference));
            Assert.False(Identical(before["quantize.cluster_size"], tokenizer.Quantizer.ClusterSize));
        }
    }
}
