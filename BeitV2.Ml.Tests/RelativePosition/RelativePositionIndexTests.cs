using System.Collections;
using BeitV2.Ml.Models.Layers;
using TorchSharp;
using TorchSharp.PyBridge;

namespace BeitV2.Ml.Tests.RelativePosition;

public class RelativePositionIndexTests
{
    [Fact]
    public void MatchesVerifiedValuesFor14x14()
    {
        var idx = RelativePositionIndex.Build(14, 14);
        const int t = 197;
        Assert.Equal(t * t, idx.Length);
        long At(int q, int k) => idx[q * t + k];

        Assert.Equal(364, At(1, 1));
        Assert.Equal(363, At(1, 2));
        Assert.Equal(365, At(2, 1));
        Assert.Equal(337, At(1, 15));
        Assert.Equal(391, At(15, 1));
        Assert.Equal(0, At(1, 196));
        Assert.Equal(728, At(196, 1));
        Assert.Equal(731, At(0, 0));
        for (int k = 1; k < t; k++)
        {
            Assert.Equal(729, At(0, k));
            Assert.Equal(730, At(k, 0));
        }

        Assert.Equal(732, RelativePositionIndex.TableRows(14, 14));
        Assert.Equal(3972, RelativePositionIndex.TableRows(32, 32));
    }

    [Fact]
    public void MatchesSpecMatrixForWindow2x3()
    {
        long[] expected =
        [
            17, 15, 15, 15, 15, 15, 15,
            16, 7, 6, 5, 2, 1, 0,
            16, 8, 7, 6, 3, 2, 1,
            16, 9, 8, 7, 4, 3, 2,
            16, 12, 11, 10, 7, 6, 5,
            16, 13, 12, 11, 8, 7, 6,
            16, 14, 13, 12, 9, 8, 7,
        ];
        Assert.Equal(expected, RelativePositionIndex.Build(2, 3));
        Assert.Equal(18, RelativePositionIndex.TableRows(2, 3));
    }

    [Fact]
    public void TensorHasShapeAndDtypeOfTheBuffer()
    {
        using var idx = RelativePositionIndex.BuildTensor(2, 3);
        Assert.Equal(new long[] { 7, 7 }, idx.shape);
        Assert.Equal(torch.ScalarType.Int64, idx.dtype);
        Assert.Equal(RelativePositionIndex.Build(2, 3), idx.data<long>().ToArray());
    }

    [Theory]
    [InlineData("vit_cls.pth", "blocks.0.attn.relative_position_index")]
    [InlineData("vit_cls.pth", "blocks.1.attn.relative_position_index")]
    [InlineData("mim.pth", "rel_pos_bias.relative_position_index")]
    public void MatchesBufferInReferenceCheckpoint(string file, string key)
    {
        var checkpoint = PyTorchUnpickler.UnpickleStateDict(Path.Combine(FixturePaths.ReferenceDir, file));
        var model = (IDictionary)checkpoint["model"]!;
        try
        {
            var buffer = (torch.Tensor)model[key]!;
            Assert.Equal(new long[] { 17, 17 }, buffer.shape); // 64 px / patch 16 → 4×4 window
            Assert.Equal(torch.ScalarType.Int64, buffer.dtype);
            Assert.Equal(RelativePositionIndex.Build(4, 4), buffer.data<long>().ToArray());
        }
        finally
        {
            foreach (var value in model.Values)
                (value as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void RejectsEmptyWindow()
    {
        Assert.Throws<ArgumentException>(() => RelativePositionIndex.Build(0, 3));
        Assert.Throws<ArgumentException>(() => RelativePositionIndex.Build(3, -1));
    }
}
