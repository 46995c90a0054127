using System.Collections;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using TorchSharp.PyBridge;
using static BeitV2.TestSupport.CheckpointFixtures;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// Spec 7.1: official files keep their weights under 'model', 'module' (DeepSpeed) or
/// 'state_dict', or at the root; keys may carry a 'module.' prefix; stored
/// <c>relative_position_index</c> buffers are ignored. Unreadable files fail with a
/// <see cref="CheckpointException"/>.
/// </summary>
public sealed class CheckpointContainerTests
{
    [Theory]
    [InlineData("model", false)]
    [InlineData("module", false)]
    [InlineData("module", true)]
    [InlineData("state_dict", false)]
    [InlineData("state_dict", true)]
    [InlineData(null, false)]
    [InlineData(null, true)]
    public void SameWeightsLoadFromEveryContainer(string? container, bool modulePrefix)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("vit_cls");
        Assert.Contains(raw.Keys, k => k.EndsWith("relative_position_index", StringComparison.Ordinal));
        var weights = new Hashtable();
        foreach (var (k, v) in Copy(raw, k => modulePrefix ? "module." + k : k)) weights[k] = v;

        IDictionary root;
        if (container is null)
        {
            root = weights;
        }
        else
        {
            // Next to the weights, what utils.save_model stores: an epoch, an args string, an
            // optimizer state dict (here: another dict holding a tensor, which must not be taken).
            root = new Hashtable
            {
                [container] = weights,
                ["epoch"] = 299,
                ["args"] = "Namespace(model='beit_base_patch16_224')",
                ["optimizer"] = new Hashtable { ["state"] = new Hashtable(), ["step"] = ones(1) },
            };
        }
        var path = dir.File("layout.pth");
        WritePth(path, root);

        var read = StateDictFile.Read(path);
        Assert.Equal(raw.Count, read.Count);
        foreach (var (k, v) in raw)
            AssertEqual(v, read[(modulePrefix ? "module." : "") + k], k);

        using var model = new BeitVisionTransformer(VitCls());
        VitCheckpoint.Load(model, path);
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model);
    }

    [Fact]
    public void ModelContainerIsPreferredOverTheRoot()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("vit_cls");
        var path = dir.File("both.pth");
        // A stray tensor at the root must not be merged into the weights.
        WritePth(path, new Hashtable { ["model"] = new Hashtable(Copy(raw)), ["scaler_scale"] = ones(1) });
        var read = StateDictFile.Read(path);
        Assert.Equal(raw.Keys.Order(), read.Keys.Order());
    }

    [Fact]
    public void ModulePrefixIsStrippedAndIndicesAreDropped()
    {
        using var scope = NewDisposeScope();
        var raw = new Dictionary<string, Tensor>
        {
            ["module.cls_token"] = zeros(1, 1, 4),
            ["module.blocks.0.attn.relative_position_index"] = zeros(new long[] { 17, 17 }, int64),
            ["rel_pos_bias.relative_position_index"] = zeros(new long[] { 17, 17 }, int64),
            ["blocks.0.attn.relative_position_bias_table"] = zeros(52, 4),
            ["encoder.module.keep"] = zeros(1),
        };
        var sd = CheckpointKeys.Normalize(raw);
        Assert.Equal(new[] { "blocks.0.attn.relative_position_bias_table", "cls_token", "encoder.module.keep" }, sd.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void StoredRelativePositionIndexIsIgnoredEvenWhenItDoesNotFit()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vit_cls");
        // A stale index of another window (or garbage) must neither fail the load nor be used.
        raw["blocks.0.attn.relative_position_index"] = full(new long[] { 5, 5 }, 3L, int64);
        raw["blocks.1.attn.relative_position_index"] = zeros(new long[] { 17, 17 }, int64);
        using var model = new BeitVisionTransformer(VitCls());
        var before = model.named_buffers().Select(b => b.buffer.clone()).ToList();
        VitCheckpoint.Load(model, raw);
        var after = model.named_buffers().Select(b => b.buffer).ToList();
        for (var i = 0; i < before.Count; i++) AssertEqual(before[i], after[i], $"buffer {i}");
    }

    [Fact]
    public void FileWithoutTensorsIsRejected()
    {
        using var dir = new TempDirectory();
        var noWeights = dir.File("args-only.pth");
        WritePth(noWeights, new Hashtable { ["epoch"] = 3, ["args"] = "Namespace()" });
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(noWeights));
        Assert.Contains("holds no tensors", e.Message);
        Assert.Contains("args-only.pth", e.Message);

        var emptyModel = dir.File("empty-model.pth");
        WritePth(emptyModel, new Hashtable { ["model"] = new Hashtable(), ["epoch"] = 3 });
        e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(emptyModel));
        Assert.Contains("holds no tensors", e.Message);

        var emptySafetensors = dir.File("empty.safetensors");
        Safetensors.SaveStateDict(emptySafetensors, new Dictionary<string, Tensor>());
        e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(emptySafetensors));
        Assert.Contains("holds no tensors", e.Message);
    }

    [Fact]
    public void MissingFileIsRejected()
    {
        var path = Path.Combine(Path.GetTempPath(), "beitv2-no-such-dir", "beitv2_base_patch16_224_pt1k.pth");
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        Assert.Contains("not found", e.Message);
        Assert.Contains(path, e.Message);
        using var model = new BeitVisionTransformer(VitConfig.Micro());
        Assert.Throws<CheckpointException>(() => VitCheckpoint.Load(model, path));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(4096)]
    public void RandomBytesAreRejected(int length)
    {
        using var dir = new TempDirectory();
        var path = dir.File("noise.pth");
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        Assert.Contains("noise.pth", e.Message);
        Assert.Contains("Cannot read", e.Message);
    }

    [Fact]
    public void TruncatedCheckpointIsRejected()
    {
        using var dir = new TempDirectory();
        var path = dir.File("truncated.pth");
        var bytes = File.ReadAllBytes(Pth("vit_cls"));
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<CheckpointException>(() => StateDictFile.Read(path));
        Assert.Contains("truncated.pth", e.Message);
    }
}
