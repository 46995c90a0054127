using System.Collections;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Tests.Parity;
using TorchSharp.PyBridge;
using static BeitV2.TestSupport.CheckpointFixtures;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// The VQ-KD teachers: shape inferred from the weights when no config is given (as CLIP's
/// build_model / the DINO presets), the layouts their files come in (bare dict, 'model', a VQ-KD
/// checkpoint's 'teacher_model.'), and fp16 weights cast to float32.
/// </summary>
public sealed class TeacherCheckpointTests
{
    private static ClipVisionConfig ClipConfig() => Config<ClipVisionConfig>("clip_teacher");

    private static DinoConfig DinoConfigOfFixture() => Config<DinoConfig>("dino_teacher");

    private static Dictionary<string, Tensor> Io(string name) => FixtureDescriptor.Load(name).LoadIo();

    private static Tensor ClipEmbedding(ClipTeacher teacher, Tensor imagesScaled)
    {
        teacher.eval();
        using var _ = inference_mode();
        return teacher.forward(imagesScaled);
    }

    private static Tensor DinoEmbedding(DinoVisionTransformer teacher, Tensor imagesScaled)
    {
        teacher.eval();
        using var _ = inference_mode();
        return teacher.forward(imagesScaled);
    }

    private static FixtureIo Spec(string name, string output) => FixtureDescriptor.Load(name).Io.Single(i => i.Name == output);

    // ---------------------------------------------------------------- CLIP

    [Fact]
    public void ClipShapeIsInferredFromTheWeights()
    {
        using var scope = NewDisposeScope();
        using var teacher = ClipTeacher.Load(Pth("clip_teacher"));
        var inferred = teacher.Visual.Config;
        Assert.Equal(64, inferred.Width);
        Assert.Equal(2, inferred.Layers);
        Assert.Equal(16, inferred.PatchSize);
        Assert.Equal(64, inferred.InputResolution);
        Assert.Equal(48, inferred.OutputDim);
        Assert.Equal(48, teacher.OutputDim);
        // CLIP's build_model rule heads = width / 64 gives 1; the fixture was built with 4 heads, which
        // no weight shape reveals. Everything else matches the fixture's constructor arguments.
        Assert.Equal(1, inferred.Heads);
        Assert.Equal(ClipConfig(), inferred with { Heads = 4 });
    }

    [Fact]
    public void ClipWithGivenConfigReproducesTheReference()
    {
        using var scope = NewDisposeScope();
        var io = Io("clip_teacher");
        using var teacher = ClipTeacher.Load(Pth("clip_teacher"), ClipConfig());
        Assert.Equal(ClipConfig(), teacher.Visual.Config);
        TensorAssert.Matches(Spec("clip_teacher", "cls_embedding"), io["cls_embedding"], ClipEmbedding(teacher, io["images_scaled"]));

        // The inferred single-head tower loads the same weights but computes something else.
        using var inferred = ClipTeacher.Load(Pth("clip_teacher"));
        Assert.False(ClipEmbedding(inferred, io["images_scaled"]).allclose(io["cls_embedding"], rtol: 1e-3, atol: 1e-3));
    }

    [Fact]
    public void ClipTowerLoadsFromAVqkdTrainingCheckpoint()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("clip_teacher");
        var weights = new Hashtable();
        foreach (var (k, v) in Copy(raw)) weights["teacher_model." + k] = v;
        // The whole CLIP model sits under teacher_model.: the text tower must be ignored, as must the
        // tokenizer's own weights.
        weights["teacher_model.token_embedding.weight"] = zeros(10, 8);
        weights["teacher_model.transformer.resblocks.0.attn.in_proj_weight"] = zeros(24, 8);
        weights["teacher_model.positional_embedding"] = zeros(77, 8);
        foreach (var (k, v) in Copy(Raw("vqkd"))) weights[k] = v;
        var path = dir.File("vqkd_with_clip_teacher.pth");
        WritePth(path, new Hashtable { ["model"] = weights });

        using var teacher = ClipTeacher.Load(path, ClipConfig());
        AssertWeightsEqual(raw, teacher);
        // The text tower's resblocks are not counted as image-tower layers.
        using var inferred = ClipTeacher.Load(path);
        Assert.Equal(2, inferred.Visual.Config.Layers);
    }

    [Fact]
    public void ClipFp16WeightsAreCastToFloat32()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("clip_teacher");
        var half = raw.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(float16));
        var path = dir.File("clip_fp16.safetensors");
        Safetensors.SaveStateDict(path, half);
        Assert.All(StateDictFile.Read(path).Values, t => Assert.Equal(float16, t.dtype));

        using var teacher = ClipTeacher.Load(path, ClipConfig());
        Assert.All(teacher.parameters(), p => Assert.Equal(float32, p.dtype));
        AssertWeightsEqual(half.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(float32)), teacher);

        using var full = ClipTeacher.Load(Pth("clip_teacher"), ClipConfig());
        var images = Io("clip_teacher")["images_scaled"];
        var want = ClipEmbedding(full, images);
        var got = ClipEmbedding(teacher, images);
        Assert.Equal(float32, got.dtype);
        AssertClose(want, got, 2e-2, "fp16 CLIP embedding");
    }

    [Fact]
    public void ClipLoaderRejectsAFileWithoutAnImageTower()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<CheckpointException>(() => ClipTeacher.Load(Pth("dino_teacher")));
        Assert.Contains("visual.conv1.weight", e.Message);
        Assert.Contains("CLIP", e.Message);
        // With a config given, the strict load names what is missing.
        e = Assert.Throws<CheckpointException>(() => ClipTeacher.Load(Pth("dino_teacher"), ClipConfig()));
        Assert.Contains("visual.conv1.weight", e.MissingKeys);
    }

    // ---------------------------------------------------------------- DINO

    [Fact]
    public void DinoShapeIsInferredFromTheWeights()
    {
        using var scope = NewDisposeScope();
        using var teacher = DinoVisionTransformer.Load(Pth("dino_teacher"));
        var inferred = teacher.Config;
        Assert.Equal(64, inferred.EmbedDim);
        Assert.Equal(2, inferred.Depth);
        Assert.Equal(16, inferred.PatchSize);
        Assert.Equal(64, inferred.ImgSize);
        Assert.True(inferred.QkvBias);
        Assert.Equal(0, inferred.NumClasses);
        // heads = dim / 64 (ViT-S/B); the fixture's 4 heads are not visible in any shape.
        Assert.Equal(1, inferred.NumHeads);
        Assert.Equal(DinoConfigOfFixture(), inferred with { NumHeads = 4 });
    }

    [Fact]
    public void DinoBareStateDictLoads()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("dino_teacher");
        var path = dir.File("dino_vitbase16_pretrain.pth");
        WritePth(path, new Hashtable(Copy(raw)));

        using var teacher = DinoVisionTransformer.Load(path, DinoConfigOfFixture());
        AssertWeightsEqual(raw, teacher);
        var io = Io("dino_teacher");
        TensorAssert.Matches(Spec("dino_teacher", "cls_embedding"), io["cls_embedding"], DinoEmbedding(teacher, io["images_scaled"]));
    }

    [Fact]
    public void DinoLoadsFromAVqkdTrainingCheckpoint()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("dino_teacher");
        var weights = new Hashtable();
        foreach (var (k, v) in Copy(raw)) weights["teacher_model." + k] = v;
        foreach (var (k, v) in Copy(Raw("vqkd"))) weights[k] = v;
        var path = dir.File("vqkd_with_dino_teacher.pth");
        WritePth(path, new Hashtable { ["model"] = weights, ["epoch"] = 10 });

        using var teacher = DinoVisionTransformer.Load(path, DinoConfigOfFixture());
        AssertWeightsEqual(raw, teacher);
        using var inferred = DinoVisionTransformer.Load(path);
        Assert.Equal(DinoConfigOfFixture(), inferred.Config with { NumHeads = 4 });
    }

    [Fact]
    public void DinoFp16WeightsAreCastToFloat32()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var raw = Raw("dino_teacher");
        var half = raw.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(float16));
        var path = dir.File("dino_fp16.safetensors");
        Safetensors.SaveStateDict(path, half);

        using var teacher = DinoVisionTransformer.Load(path, DinoConfigOfFixture());
        Assert.All(teacher.parameters(), p => Assert.Equal(float32, p.dtype));
        AssertWeightsEqual(half.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(float32)), teacher);

        using var full = DinoVisionTransformer.Load(Pth("dino_teacher"), DinoConfigOfFixture());
        var images = Io("dino_teacher")["images_scaled"];
        var got = DinoEmbedding(teacher, images);
        Assert.Equal(float32, got.dtype);
        AssertClose(DinoEmbedding(full, images), got, 2e-2, "fp16 DINO embedding");
    }

    [Fact]
    public void DinoLoaderRejectsAFileWithoutADinoViT()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<CheckpointException>(() => DinoVisionTransformer.Load(Pth("clip_teacher")));
        Assert.Contains("pos_embed", e.Message);
        Assert.Contains("DINO", e.Message);
        e = Assert.Throws<CheckpointException>(() => DinoVisionTransformer.Load(Pth("clip_teacher"), DinoConfigOfFixture()));
        Assert.Contains("pos_embed", e.MissingKeys);
        Assert.Contains("visual.proj", e.UnexpectedKeys);
    }

    /// <summary>|got − want| ≤ tol·max(1, max|want|) everywhere, and not bit-identical (fp16 rounding must show).</summary>
    private static void AssertClose(Tensor want, Tensor got, double tol, string what)
    {
        var scale = Math.Max(1.0, want.abs().max().item<float>());
        var maxDiff = (got - want).abs().max().item<float>();
        Assert.True(maxDiff <= tol * scale, $"{what}: max |diff| {maxDiff:g3} > {tol * scale:g3}");
        Assert.True(maxDiff > 0, $"{what}: identical to the float32 result, so the weights were not fp16");
    }
}
