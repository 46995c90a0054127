using System.Collections;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models.Vqkd;
using static BeitV2.TestSupport.CheckpointFixtures;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// Spec 3.6: a tokenizer file is loaded strictly after dropping every key that starts with "loss",
/// "teacher" or "scaling"; a codebook that was never initialised is refused at tokenisation.
/// </summary>
public sealed class TokenizerCheckpointTests
{
    private static VqkdConfig Config() => Config<VqkdConfig>("vqkd");

    private static Tensor Tokens(VqkdTokenizer model)
    {
        model.eval();
        using var _ = inference_mode();
        return model.GetCodebookIndices(Images(Config().Encoder.ImgSize, batch: 2, seed: 11));
    }

    [Fact]
    public void ScalingLayerKeysAreDropped()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vqkd");
        var scaling = raw.Keys.Where(k => k.StartsWith("scaling_layer.", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(scaling);
        using var model = new VqkdTokenizer(Config());
        Assert.DoesNotContain(model.state_dict().Keys, k => k.StartsWith("scaling", StringComparison.Ordinal));

        VqkdCheckpoint.Load(model, raw);
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model, k => !scaling.Contains(k));
        // A plain strict load would have failed on exactly these keys.
        var e = Assert.Throws<CheckpointException>(() => StateDictLoader.Load(model, raw, "VQ-KD tokenizer"));
        Assert.Equal(scaling.Order(StringComparer.Ordinal), e.UnexpectedKeys);
    }

    [Theory]
    [InlineData("model")]
    [InlineData("state_dict")]
    public void TrainingCheckpointWithTeacherAndLossKeysLoads(string container)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("vqkd");
        var weights = new Hashtable();
        foreach (var (k, v) in Copy(raw)) weights[k] = v;
        // What a VQ-KD training checkpoint adds: the frozen teacher (CLIP here: visual and text
        // towers) and loss-module state.
        foreach (var (k, v) in Copy(Raw("clip_teacher"))) weights["teacher_model." + k] = v;
        weights["teacher_model.token_embedding.weight"] = zeros(10, 8);
        weights["teacher_model.logit_scale"] = ones(1);
        weights["loss_fn.weight"] = ones(3);
        weights["loss_scale"] = ones(1);
        var path = dir.File("vqkd_training.pth");
        WritePth(path, new Hashtable { [container] = weights, ["epoch"] = 99, ["optimizer"] = new Hashtable { ["step"] = ones(1) } });

        using var expected = new VqkdTokenizer(Config());
        VqkdCheckpoint.Load(expected, raw);
        using var model = new VqkdTokenizer(Config());
        VqkdCheckpoint.Load(model, path);

        AssertWeightsEqual(Snapshot(expected), model);
        AssertEqual(Tokens(expected), Tokens(model), "token ids");
    }

    [Fact]
    public void DeepSpeedPrefixedTokenizerLoads()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vqkd");
        using var model = new VqkdTokenizer(Config());
        VqkdCheckpoint.Load(model, Copy(raw, k => "module." + k));
        AssertWeightsEqual(CheckpointKeys.Normalize(raw), model, k => !k.StartsWith("scaling_layer.", StringComparison.Ordinal));
    }

    [Fact]
    public void MissingTokenizerKeysAreStillAnError()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vqkd");
        // Dropping teacher/loss/scaling keys must not relax anything else.
        raw.Remove("quantize.embedding.weight");
        raw["encoder.extra"] = zeros(1);
        using var model = new VqkdTokenizer(Config());
        var e = Assert.Throws<CheckpointException>(() => VqkdCheckpoint.Load(model, raw));
        Assert.Equal(new[] { "quantize.embedding.weight" }, e.MissingKeys);
        Assert.Equal(new[] { "encoder.extra" }, e.UnexpectedKeys);
        Assert.Contains("VQ-KD tokenizer", e.Message);
    }

    [Fact]
    public void UninitialisedCodebookRefusesToTokenize()
    {
        using var scope = NewDisposeScope();
        var raw = Raw("vqkd");
        Assert.Equal(1f, raw["quantize.embedding.initted"].item<float>());
        raw["quantize.embedding.initted"] = zeros(1);
        using var model = new VqkdTokenizer(Config());
        VqkdCheckpoint.Load(model, raw);
        Assert.False(model.Quantizer.Embedding.Initialised);

        model.eval();
        using var _ = inference_mode();
        var e = Assert.Throws<InvalidOperationException>(() => model.GetCodebookIndices(Images(Config().Encoder.ImgSize)));
        Assert.Contains("initted = 0", e.Message);
        Assert.Contains("never initialised", e.Message);
    }
}
