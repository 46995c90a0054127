using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Api;

/// <summary>The bundled default models (BeitV2.Web/DefaultModels, trained by the pipeline) as a fresh clone serves them.</summary>
public sealed class DefaultModelsTests
{
    private static string Bundle => Path.Combine(AppContext.BaseDirectory, "DefaultModels");

    /// <summary>defaults.json of the bundle: kind → model id.</summary>
    private static Dictionary<string, string> Defaults() =>
        JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(Bundle, "defaults.json")))!;

    private static ApiHost FreshHost() => new(new Dictionary<string, string?> { ["Models:SeedDefaults"] = "true" });

    [Fact]
    public void Bundle_NamesADefaultPerKind_AndEveryManifestMatchesItsFiles()
    {
        var defaults = Defaults();
        Assert.Equal(["classifier", "pretrain", "segmenter", "tokenizer"], defaults.Keys.Order());
        foreach (var (kind, id) in defaults)
        {
            var folder = Path.Combine(Bundle, id);
            var manifest = ModelPackage.ReadManifest(folder);
            Assert.NotNull(manifest.WeightsSha256);
            using var loaded = ModelPackage.Load(folder); // verifies the weights' SHA-256 against the manifest
            Assert.Contains("pipeline v", manifest.Metadata!["lineage"]);
            Assert.Contains("seed", manifest.Metadata["lineage"]);
            Assert.Contains("metrics:", manifest.Metadata["lineage"]);
        }
        Assert.True(File.Exists(Path.Combine(Bundle, "results.md")));
    }

    [Fact]
    public async Task BundledIds_AreShort_AndTheirFormerIdsStillReachThem()
    {
        var defaults = Defaults();
        foreach (var (kind, id) in defaults) Assert.Matches($"^{kind}-fashion-[0-9a-f]{{6}}$", id);
        foreach (var folder in Directory.GetDirectories(Bundle))   // lineage names models by their new ids too
            Assert.DoesNotContain("the-served-classifier", File.ReadAllText(Path.Combine(folder, "manifest.json")));

        using var host = FreshHost();
        using var client = host.CreateClient();
        foreach (var (old, now) in BeitV2.Web.Registry.ModelIds.Renamed)
        {
            Assert.Contains(now, defaults.Values);
            Assert.Equal(now, (await client.GetAsync($"/api/v1/models/{old}").JsonAsync()).Str("id"));
        }
        var classified = await client.PostAsync("/api/v1/classify?model=the-served-classifier-fine-tune-from-the-mim-bac-bbcace",
            Http.Images(File.ReadAllBytes(Sample("fashion-0-ankle-boot.png")))).JsonAsync();
        Assert.Equal("classifier-fashion-bbcace", classified.Str("model"));
    }

    [Fact]
    public async Task AFormerId_SetsTheDefault_AndDeletes_TheModelItNames()
    {
        const string formerClassifier = "the-served-classifier-fine-tune-from-the-mim-bac-bbcace";
        using var host = FreshHost();
        using var client = host.CreateClient();
        var other = host.Seed(new BeitV2.Ml.Models.BeitVisionTransformer(BeitV2.Ml.Models.VitConfig.Micro(numClasses: 10)), "another classifier", makeDefault: true);

        (await client.PostAsync($"/api/v1/models/{formerClassifier}/default", null)).EnsureSuccessStatusCode();
        Assert.Equal("classifier-fashion-bbcace", host.Registry.DefaultId("classifier"));
        Assert.True((await client.GetAsync("/api/v1/models/classifier-fashion-bbcace").JsonAsync()).GetProperty("isDefault").GetBoolean());

        (await client.PostAsync($"/api/v1/models/{other.Id}/default", null)).EnsureSuccessStatusCode();
        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/models/{formerClassifier}")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await client.GetAsync("/api/v1/models/classifier-fashion-bbcace")).StatusCode);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Models_HaveShortNames_AndSayWhichEndpointsUseThemByDefault()
    {
        using var host = FreshHost();
        using var client = host.CreateClient();
        var models = (await client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray().ToDictionary(m => m.Str("kind"));
        Assert.Equal("VQ-KD tokenizer", models["tokenizer"].Str("shortName"));
        Assert.Equal("MIM pretraining", models["pretrain"].Str("shortName"));
        Assert.Equal("The served classifier", models["classifier"].Str("shortName"));
        Assert.Equal("UperNet segmenter", models["segmenter"].Str("shortName"));
        Assert.All(models.Values, m => Assert.True(m.Str("name").Length > m.Str("shortName").Length));

        string[] DefaultFor(string kind) => models[kind].Items("defaultFor").Select(e => e.GetString()!).ToArray();
        Assert.Equal(["tokens"], DefaultFor("tokenizer"));
        Assert.Equal(["embeddings", "classify"], DefaultFor("classifier"));
        Assert.Empty(DefaultFor("pretrain"));
        Assert.Equal(["segment"], DefaultFor("segmenter"));
        // And the endpoint does what the description says.
        var embedded = await client.PostAsync("/api/v1/embeddings", Http.Images(File.ReadAllBytes(Sample("fashion-0-ankle-boot.png")))).JsonAsync();
        Assert.Equal(models["classifier"].Str("id"), embedded.Str("model"));
        Assert.Equal(["embeddings", "classify"],
            (await client.GetAsync($"/api/v1/models/{models["classifier"].Str("id")}").JsonAsync()).Items("defaultFor").Select(e => e.GetString()));
    }

    [Fact]
    public async Task FreshDataDirectory_ServesTheDefaults_OnEveryEndpoint()
    {
        using var host = FreshHost();
        using var client = host.CreateClient();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);
        var image = Http.Images(File.ReadAllBytes(Sample("fashion-0-ankle-boot.png")));
        var tokens = await client.PostAsync("/api/v1/tokens", image).JsonAsync();
        Assert.Equal(7, tokens.GetProperty("rows").GetInt32());
        var classified = await client.PostAsync("/api/v1/classify?topK=3", Http.Images(File.ReadAllBytes(Sample("fashion-0-ankle-boot.png")))).JsonAsync();
        Assert.Equal(3, classified.Items("images")[0].Items("predictions").Length);
        var embedded = await client.PostAsync("/api/v1/embeddings", Http.Images(File.ReadAllBytes(Sample("fashion-0-ankle-boot.png")))).JsonAsync();
        Assert.Equal(96, embedded.GetProperty("dim").GetInt32());
        var bag = File.ReadAllBytes(Sample("fashion-18-bag.png"));
        var segmented = await client.PostAsync("/api/v1/segment", Http.Images(bag)).JsonAsync();
        var mask = segmented.Items("images")[0];
        Assert.Equal(System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bag.AsSpan(16, 4)), mask.GetProperty("width").GetInt32()); // PNG IHDR width
        Assert.Equal(1.0, mask.Items("classes").Sum(c => c.GetProperty("pixelFraction").GetDouble()), 3);
        Assert.NotEmpty(Convert.FromBase64String(mask.Str("maskPng")));

        // Each answer names the bundled default of its kind.
        var defaults = Defaults();
        Assert.Equal(defaults["tokenizer"], tokens.Str("model"));
        Assert.Equal(defaults["classifier"], classified.Str("model"));
        Assert.Equal(defaults["segmenter"], segmented.Str("model"));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task AtStartUp_TheDefaultClassifierTokenizerAndSegmenter_AreLoadedAndWarmedUp()
    {
        using var host = FreshHost();
        using var client = host.CreateClient(); // starts the host
        var models = host.Services.GetRequiredService<BeitV2.Web.Inference.ModelHost>();
        var defaults = Defaults();
        string[] expected = [defaults["classifier"], defaults["tokenizer"], defaults["segmenter"]];
        // The warm-up is a hosted service: its task ends when the three models are loaded and have answered a batch.
        var warmup = host.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<BeitV2.Web.Inference.ModelWarmup>().Single();
        await warmup.ExecuteTask!;
        Assert.Equal(expected.Order(), models.LoadedIds.Order()); // no request was made: the warm-up loaded them, and only them
        host.AssertNoServerErrors();
    }

    [Theory]
    [InlineData("fashion-0-ankle-boot.png", "Ankle boot")]
    [InlineData("fashion-9-sneaker.png", "Sneaker")]
    [InlineData("fashion-18-bag.png", "Bag")]
    [InlineData("fashion-19-t-shirt.png", "T-shirt/top")]
    public async Task ShippedClassifier_GetsTestSplitSamplesRight(string file, string label)
    {
        using var host = FreshHost();
        using var client = host.CreateClient();
        var json = await client.PostAsync("/api/v1/classify?topK=1", Http.Images(File.ReadAllBytes(Sample(file)))).JsonAsync();
        Assert.Equal(label, json.Items("images")[0].Items("predictions")[0].Str("label"));
    }

    /// <summary>
    /// The shipped segmenter names the main garment of composed test scenes (the scenes its mIoU is measured on): the
    /// largest non-background class of its mask is the largest garment class of the ground truth. It does on 20 of
    /// the first 40 scenes of the split; the misses are mostly the upper-body garments (Pullover, Coat, Shirt, Dress:
    /// IoU 6–35 %, docs/segmentation.md) taken for one another. The issue asked for every scene of a handful: the README
    /// reports that as missed. This test holds that rate (at least 18 of the 40, a margin for
    /// scenes whose two largest classes are close and may swap on another CPU's arithmetic; none called background only),
    /// so a broken export, preprocessing or bundle shows.
    /// </summary>
    [Fact]
    public async Task ShippedSegmenter_NamesTheMainGarmentOfMostTestScenes()
    {
        using var host = FreshHost();
        using var client = host.CreateClient();
        var datasets = host.Services.GetRequiredService<BeitV2.Web.Datasets.DatasetCatalog>();
        var (_, scenes) = datasets.Open(BeitV2.Web.Datasets.DatasetCatalog.FashionMnistSeg, 1, 1000, seed: 0);
        Assert.NotNull(scenes);
        var names = scenes.ClassNames;
        var misses = new List<string>();
        const int Scenes = 40;
        for (var i = 0; i < Scenes; i++)
        {
            var scene = scenes.Get(i);
            var truth = scene.Mask!.Where(c => c is > 0 and < ImageSample.IgnoreIndex).GroupBy(c => c).MaxBy(g => g.Count())!.Key;
            var path = Path.Combine(host.DataDirectory, $"scene-{i}.png");
            BeitV2.TestSupport.DataTestFiles.WriteRgbPng(path, scene.Image);
            var json = await client.PostAsync("/api/v1/segment", Http.Images(File.ReadAllBytes(path))).JsonAsync();
            var predicted = json.Items("images")[0].Items("classes").Where(c => c.GetProperty("classIndex").GetInt32() != 0)
                .MaxBy(c => c.GetProperty("pixelFraction").GetDouble());
            Assert.True(predicted.ValueKind != JsonValueKind.Undefined, $"scene {i}: background only");
            var got = predicted.GetProperty("classIndex").GetInt32();
            if (got != truth) misses.Add($"scene {i}: {names[truth]} predicted as {names[got]}");
        }
        Assert.True(Scenes - misses.Count >= 18, $"{Scenes - misses.Count} of {Scenes} right; " + string.Join("; ", misses));
        host.AssertNoServerErrors();
    }

    private static string Sample(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "wwwroot", "samples", file);
            if (File.Exists(path)) return path;
        }
        throw new FileNotFoundException($"wwwroot/samples/{file} not found above {AppContext.BaseDirectory}");
    }
}
