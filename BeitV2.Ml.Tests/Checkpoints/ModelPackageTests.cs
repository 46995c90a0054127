using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Tests.Parity;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>Our own format: save, reload without knowing the shape, identical outputs; and its failure modes.</summary>
public sealed class ModelPackageTests
{
    /// <summary>Loads a fixture's official weights, saves them in our format, reloads and compares outputs bit for bit.</summary>
    [Theory]
    [InlineData("vit_cls")]
    [InlineData("mim")]
    [InlineData("vqkd")]
    [InlineData("clip_teacher")]
    [InlineData("dino_teacher")]
    public void FixtureModelsRoundTripWithIdenticalOutputs(string stem)
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempDirectory();
        var fixture = FixtureDescriptor.Load(stem);
        var io = fixture.LoadIo();
        using var original = LoadOfficial(fixture);
        var dir = tmp.Combine("model");
        ModelPackage.Save(original, dir, labels: new[] { "a", "b" }, metadata: new Dictionary<string, string> { ["source"] = stem });

        using var loaded = ModelPackage.Load(dir);
        Assert.Equal(fixture.Kind, loaded.Kind);
        Assert.Equal(new[] { "a", "b" }, loaded.Manifest.Labels);
        Assert.Equal(stem, loaded.Manifest.Metadata!["source"]);
        Assert.Equal(original.state_dict().Keys.Order(), loaded.Module.state_dict().Keys.Order());

        var a = Outputs(original, io);
        var b = Outputs(loaded.Module, io);
        Assert.NotEmpty(a);
        for (var i = 0; i < a.Count; i++)
            Assert.True(a[i].Equals(b[i]), $"output {i} of {stem} differs after the round trip");
    }

    [Fact]
    public void FreshModelsOfEveryKindRoundTrip()
    {
        using var tmp = new TempDirectory();
        manual_seed(7);
        var models = new nn.Module[]
        {
            new BeitVisionTransformer(VitConfig.Micro() with { UseMeanPooling = false, UseAbsPosEmb = true, UseSharedRelPosBias = true, UseRelPosBias = false }),
            new BeitMim(MimConfig.Micro() with { SharedLmHead = false }),
            new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }),
        };
        foreach (var model in models)
        {
            var dir = tmp.Combine(model.GetType().Name);
            ModelPackage.Save(model, dir);
            using var loaded = ModelPackage.Load(dir);
            var want = model.state_dict();
            foreach (var (key, value) in loaded.Module.state_dict())
                Assert.True(value.Equals(want[key]), $"{model.GetType().Name}: {key} differs after the round trip");
            model.Dispose();
        }
    }

    [Fact]
    public void SavingOverAnExistingPackageReplacesItAndLeavesNoTemporaryFolders()
    {
        using var tmp = new TempDirectory();
        var dir = tmp.Combine("m");
        using var first = new BeitVisionTransformer(VitConfig.Micro(numClasses: 3));
        using var second = new BeitVisionTransformer(VitConfig.Micro(numClasses: 5));
        ModelPackage.Save(first, dir);
        ModelPackage.Save(second, dir);
        using var loaded = ModelPackage.Load(dir);
        Assert.Equal(5, loaded.As<BeitVisionTransformer>().Config.NumClasses);
        Assert.Equal(new[] { "m" }, Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void CorruptedWeightsAreRefused()
    {
        using var tmp = new TempDirectory();
        var dir = tmp.Combine("m");
        using (var model = new BeitVisionTransformer(VitConfig.Micro())) ModelPackage.Save(model, dir);
        var weights = Path.Combine(dir, "weights.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(weights, bytes);
        var e = Assert.Throws<CheckpointException>(() => ModelPackage.Load(dir));
        Assert.Contains("SHA-256", e.Message);
    }

    [Fact]
    public void FolderWithoutManifestOrWithUnknownKindIsRefused()
    {
        using var tmp = new TempDirectory();
        Assert.Contains("manifest.json", Assert.Throws<CheckpointException>(() => ModelPackage.Load(tmp.Path)).Message);

        var dir = tmp.Combine("m");
        using (var model = new BeitVisionTransformer(VitConfig.Micro())) ModelPackage.Save(model, dir);
        var manifest = Path.Combine(dir, ModelPackage.ManifestFile);
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"vit_cls\"", "\"unicorn\""));
        Assert.Contains("unicorn", Assert.Throws<CheckpointException>(() => ModelPackage.Load(dir)).Message);
    }

    [Fact]
    public void AsReportsTheWrongKindClearly()
    {
        using var tmp = new TempDirectory();
        var dir = tmp.Combine("m");
        using (var model = new BeitVisionTransformer(VitConfig.Micro())) ModelPackage.Save(model, dir);
        using var loaded = ModelPackage.Load(dir);
        Assert.Contains("vit_cls", Assert.Throws<InvalidOperationException>(() => loaded.As<VqkdTokenizer>()).Message);
    }

    private static nn.Module LoadOfficial(FixtureDescriptor f)
    {
        switch (f.Kind)
        {
            case "vit_cls":
            {
                var m = new BeitVisionTransformer(ModelJson.Deserialize<VitConfig>(f.Config, f.Stem));
                VitCheckpoint.Load(m, f.WeightsPth);
                return m;
            }
            case "mim":
            {
                var m = new BeitMim(ModelJson.Deserialize<MimConfig>(f.Config, f.Stem));
                MimCheckpoint.Load(m, f.WeightsPth);
                return m;
            }
            case "vqkd":
            {
                var m = new VqkdTokenizer(ModelJson.Deserialize<VqkdConfig>(f.Config, f.Stem));
                VqkdCheckpoint.Load(m, f.WeightsPth);
                return m;
            }
            case "clip_teacher":
                return ClipTeacher.Load(f.WeightsPth, ModelJson.Deserialize<ClipVisionConfig>(f.Config, f.Stem));
            case "dino_teacher":
                return DinoVisionTransformer.Load(f.WeightsPth, ModelJson.Deserialize<DinoConfig>(f.Config, f.Stem));
            default:
                throw new ArgumentException(f.Kind);
        }
    }

    private static List<Tensor> Outputs(nn.Module model, IReadOnlyDictionary<string, Tensor> io)
    {
        model.eval();
        using var _ = inference_mode();
        switch (model)
        {
            case BeitVisionTransformer vit:
                return new List<Tensor> { vit.forward(io["images"]) };
            case BeitMim mim:
                return mim.ForwardAllTokens(io["images"], io["bool_masked_pos"]).ToList();
            case VqkdTokenizer vqkd:
                vqkd.Quantizer.TrackUsageInEval = false;
                using (var o = vqkd.Forward(io["images_raw"], io["teacher_targets"]))
                    return new List<Tensor> { o.Encoding.Indices.clone(), o.Reconstruction.clone(), o.Loss.clone() };
            case ClipTeacher clip:
                return new List<Tensor> { clip.forward(io["images_scaled"]) };
            case DinoVisionTransformer dino:
                return new List<Tensor> { dino.forward(io["images_scaled"]) };
            default:
                throw new ArgumentException(model.GetType().Name);
        }
    }
}
