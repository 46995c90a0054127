using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Serving;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// The manifest's <c>preprocessing</c>: written by <see cref="ModelPackage.Save"/> with each kind's defaults (what serving
/// did before the field existed), read back as what serving applies, and absent from older packages, which are served
/// as before.
/// </summary>
public sealed class ModelPreprocessingTests
{
    private static string Bundle => Path.Combine(FixturePaths.RepoRoot, "BeitV2.Web", "DefaultModels");

    /// <summary>Every byte value in every channel, as a 16×16 RGB image.</summary>
    private static RgbBuffer AllBytes()
    {
        var pixels = new byte[16 * 16 * 3];
        for (var i = 0; i < 256; i++)
            for (var c = 0; c < 3; c++) pixels[i * 3 + c] = (byte)((i + 85 * c) % 256);
        return new RgbBuffer(pixels, 16, 16);
    }

    [Theory]
    [InlineData("default")]
    [InlineData("imagenet_norm")]
    [InlineData("dall-e")]
    public void TokenizerInputMapping_AsMeanAndStd_EqualsPreProcess_ForEveryByte(string processType)
    {
        // What serving fed the tokenizer before: [0, 1] pixels, mapped by PreProcess (batch max, ×255, /127.5 − 1, …).
        using var scope = NewDisposeScope();
        var rgb = AllBytes();
        var unit = new EvalTransform(16, normalization: PixelNormalization.Unit).ToChw(rgb);
        var config = VqkdConfig.Micro() with { ProcessType = processType, QuantizeKmeansInit = false };
        using var tokenizer = new VqkdTokenizer(config);
        var expected = tokenizer.PreProcess(tensor(unit, new long[] { 1, 3, 16, 16 })).flatten().data<float>().ToArray();

        // What serving feeds it now: one mapping in C#, from the manifest's mean and std.
        var preprocessing = ModelCatalog.Default.DefaultPreprocessing(tokenizer)!;
        var actual = new EvalTransform(16, normalization: preprocessing.Normalization).ToChw(rgb);

        Assert.Equal(VqkdPreProcess.Normalization(processType), preprocessing.Normalization);
        Assert.Equal(expected, actual);   // bit for bit
    }

    [Fact]
    public void Save_WritesEachKindsPreprocessing()
    {
        using var tmp = new TempDirectory();
        ModelPreprocessing Saved(nn.Module model, string name)
        {
            using (model) ModelPackage.Save(model, tmp.Combine(name));
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Combine(name), ModelPackage.ManifestFile)))!;
            Assert.NotNull(json["preprocessing"]?["mean"]);   // snake_case, beside the config
            return ModelPackage.ReadManifest(tmp.Combine(name)).Preprocessing!;
        }

        var vit = Saved(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "vit");
        Assert.Equal((ModelPreprocessing.CenterCrop, 0.875, ModelPreprocessing.Bicubic, 3), (vit.CropMode, vit.CropPct!.Value, vit.Interpolation, vit.Channels));
        Assert.Equal(PixelNormalization.ImageNet, vit.Normalization);
        Assert.Equal(VitConfig.Micro().ImgSize, vit.InputSize);

        var tokenizer = Saved(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "vqkd");
        Assert.Equal(PixelNormalization.Half, tokenizer.Normalization);
        Assert.Equal(ModelPreprocessing.CenterCrop, tokenizer.CropMode);

        var segmenter = Saved(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4)), "seg");
        Assert.Equal((ModelPreprocessing.Squash, (double?)null), (segmenter.CropMode, segmenter.CropPct));
        Assert.Equal(PixelNormalization.ImageNet, segmenter.Normalization);
    }

    [Fact]
    public void BundledPackages_WithoutTheField_AreServedWithTheirKindsDefaults_AsANewSaveWritesThem()
    {
        using var tmp = new TempDirectory();
        var expected = new Dictionary<string, PixelNormalization>
        {
            [ModelKind.Vqkd] = PixelNormalization.Half, [ModelKind.VitCls] = PixelNormalization.ImageNet,
            [ModelKind.Mim] = PixelNormalization.ImageNet, [ModelKind.Segmenter] = PixelNormalization.ImageNet,
        };
        var bundled = Directory.GetDirectories(Bundle);
        Assert.Equal(4, bundled.Length);
        foreach (var original in bundled)
        {
            // The bundle is written with the field now; a copy without it is a package written before the field existed.
            var folder = tmp.Combine("old-" + Path.GetFileName(original));
            Directory.CreateDirectory(folder);
            foreach (var file in Directory.GetFiles(original)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            var manifestPath = Path.Combine(folder, ModelPackage.ManifestFile);
            var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
            manifest.Remove("preprocessing");
            File.WriteAllText(manifestPath, manifest.ToJsonString());
            Assert.Null(ModelPackage.ReadManifest(folder).Preprocessing);
            using var package = ModelPackage.Load(folder);
            using var served = ModelCatalog.Default.Serve(package)!;
            Assert.Equal(expected[package.Kind], served.Preprocessing.Normalization);
            Assert.Equal(package.Kind == ModelKind.Segmenter ? ModelPreprocessing.Squash : ModelPreprocessing.CenterCrop, served.Preprocessing.CropMode);

            var copy = tmp.Combine(Path.GetFileName(folder));
            ModelPackage.Save(package.Module, copy);
            Assert.Equal(JsonSerializer.Serialize(served.Preprocessing, ModelJson.Options),
                JsonSerializer.Serialize(ModelPackage.ReadManifest(copy).Preprocessing, ModelJson.Options));
        }
    }

    /// <summary>A package's manifest, edited: <paramref name="edit"/> changes its "preprocessing" object.</summary>
    private static string EditedPackage(TempDirectory tmp, Action<JsonObject> edit)
    {
        var dir = tmp.Combine("vit");
        using (var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 3))) ModelPackage.Save(model, dir);
        var path = Path.Combine(dir, ModelPackage.ManifestFile);
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json["preprocessing"]!.AsObject());
        File.WriteAllText(path, json.ToJsonString());
        return dir;
    }

    [Fact]
    public void TheManifestsPreprocessing_IsWhatServingApplies()
    {
        using var tmp = new TempDirectory();
        var dir = EditedPackage(tmp, p =>
        {
            p["mean"] = new JsonArray(0.5, 0.5, 0.5);
            p["std"] = new JsonArray(0.5, 0.5, 0.5);
            p["crop_pct"] = 0.9;
        });
        using var package = ModelPackage.Load(dir);
        using var served = ModelCatalog.Default.Serve(package)!;
        Assert.Equal(PixelNormalization.Half, served.Preprocessing.Normalization);
        Assert.Equal(0.9, served.Preprocessing.CropPct);
    }

    [Theory]
    [InlineData("interpolation", "\"bilinear\"")]
    [InlineData("channels", "1")]
    [InlineData("crop_mode", "\"border\"")]
    [InlineData("input_size", "999")]
    [InlineData("crop_pct", "0.01")]
    [InlineData("std", "[0.5, 0, 0.5]")]
    [InlineData("mean", "[0.5, 0.5]")]
    public void PreprocessingThisBuildCannotApply_IsRefusedWhenTheModelIsServed(string key, string value)
    {
        using var tmp = new TempDirectory();
        var dir = EditedPackage(tmp, p => p[key] = JsonNode.Parse(value));
        using var package = ModelPackage.Load(dir);
        var e = Assert.Throws<CheckpointException>(() => ModelCatalog.Default.Serve(package));
        Assert.Contains("preprocessing", e.Message);
    }
}
