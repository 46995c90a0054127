using System.Text.Json;
using BeitV2.Ml.Models;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// The models say what they know: the bundled models carry their domain and an out-of-domain fit, and their answers flag
/// ordinary photos (the page's own samples) while passing Fashion-MNIST images; a model without a fit says "unknown".
/// </summary>
public sealed class OutOfDomainTests
{
    private static ApiHost FreshHost() => new(new Dictionary<string, string?> { ["Models:SeedDefaults"] = "true" });

    private static string SamplesFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "wwwroot", "samples");
            if (Directory.Exists(path)) return path;
        }
        throw new DirectoryNotFoundException($"wwwroot/samples not found above {AppContext.BaseDirectory}");
    }

    private static byte[][] Files(string pattern) =>
        Directory.GetFiles(SamplesFolder(), pattern).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();

    [Fact]
    public async Task TheShippedClassifier_FlagsEverySamplePhoto_AndNoFashionMnistSample()
    {
        using var host = FreshHost();
        using var client = host.CreateClient();
        var photos = Files("*.jpg");
        var fashion = Files("fashion-*.png");
        Assert.True(photos.Length >= 5 && fashion.Length >= 4, $"{photos.Length} photos, {fashion.Length} Fashion-MNIST samples");

        var answer = await client.PostAsync("/api/v1/classify", Http.Images(photos)).JsonAsync();
        var domain = answer.GetProperty("domain");
        Assert.Equal("Fashion-MNIST", domain.Str("dataset"));
        Assert.Contains("clothing", domain.Str("description"));
        Assert.Equal("accuracy", domain.GetProperty("quality").Str("metric"));
        foreach (var image in answer.Items("images"))
        {
            var ood = image.GetProperty("outOfDomain");
            Assert.True(ood.GetProperty("outside").GetBoolean(), $"photo {image.GetProperty("index")}: {ood}");
            Assert.True(ood.GetProperty("score").GetDouble() > ood.GetProperty("threshold").GetDouble());
        }

        var inDomain = await client.PostAsync("/api/v1/classify", Http.Images(fashion)).JsonAsync();
        foreach (var image in inDomain.Items("images"))
            Assert.False(image.GetProperty("outOfDomain").GetProperty("outside").GetBoolean(), $"Fashion-MNIST sample {image.GetProperty("index")} was flagged");
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task EveryShippedModel_ShowsItsDomain_AndEmbeddingsAndMasksAreScoredToo()
    {
        using var host = FreshHost();
        using var client = host.CreateClient();
        var models = (await client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray().ToList();
        Assert.Equal(4, models.Count);
        Assert.All(models, m => Assert.StartsWith("Fashion-MNIST", m.GetProperty("domain").Str("dataset")));
        var segmenter = models.Single(m => m.Str("kind") == "segmenter");
        var one = await client.GetAsync($"/api/v1/models/{segmenter.Str("id")}").JsonAsync();
        Assert.Equal("mIoU", one.GetProperty("domain").GetProperty("quality").Str("metric"));
        Assert.InRange(one.GetProperty("domain").GetProperty("quality").GetProperty("value").GetDouble(), 0.3, 1);
        var tokenizer = models.Single(m => m.Str("kind") == "tokenizer");
        Assert.Equal(JsonValueKind.Null, tokenizer.GetProperty("domain").GetProperty("outOfDomain").ValueKind);

        var photo = Files("rocket.jpg")[0];
        var boot = Files("fashion-0-ankle-boot.png")[0];
        var masks = await client.PostAsync("/api/v1/segment", Http.Images(photo, boot)).JsonAsync();
        Assert.StartsWith("Fashion-MNIST", masks.GetProperty("domain").Str("dataset"));
        Assert.True(masks.Items("images")[0].GetProperty("outOfDomain").GetProperty("outside").GetBoolean());
        var pretrain = models.Single(m => m.Str("kind") == "pretrain").Str("id");
        var embedded = await client.PostAsync($"/api/v1/embeddings?model={pretrain}", Http.Images(photo, boot)).JsonAsync();
        var data = embedded.Items("data");
        Assert.True(data[0].GetProperty("outOfDomain").GetProperty("outside").GetBoolean());
        Assert.False(data[1].GetProperty("outOfDomain").GetProperty("outside").GetBoolean());
        var tokens = await client.PostAsync("/api/v1/tokens", Http.Images(boot)).JsonAsync();
        Assert.StartsWith("Fashion-MNIST", tokens.GetProperty("domain").Str("dataset"));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task AModelWithoutADomain_SaysUnknown_AndItsAnswersCarryNoScore()
    {
        using var host = new ApiHost();
        var model = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "micro classifier", ["a", "b", "c"]);
        using var client = host.CreateClient();
        var info = await client.GetAsync($"/api/v1/models/{model.Id}").JsonAsync();
        Assert.Equal("unknown", info.GetProperty("domain").Str("dataset"));
        Assert.Equal("unknown", info.GetProperty("domain").Str("description"));
        var answer = await client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage)).JsonAsync();
        Assert.Equal("unknown", answer.GetProperty("domain").Str("dataset"));
        Assert.Equal(JsonValueKind.Null, answer.Items("images")[0].GetProperty("outOfDomain").ValueKind);
        host.AssertNoServerErrors();
    }
}
