using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>What the pages show agrees with what the API says and does: default models, model sizes, names.</summary>
[Collection(ShippedUiCollection.Name)]
public sealed class ShippedModelNamesBrowserTests(ShippedUiApp app, ITestOutputHelper output)
{
    private async Task<JsonElement> GetAsync(string path)
    {
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        return await client.GetFromJsonAsync<JsonElement>(path);
    }

    [Fact]
    public async Task Explore_PreselectsTheModelsTheApiUsesByDefault_WithShortNamesAndFullNamesOnHover()
    {
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var sample = await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "wwwroot", "samples", "fashion-0-ankle-boot.png"));
        var embedded = await client.PostAsync("/api/v1/embeddings", Http.Images(sample)).JsonAsync();
        var apiEmbedder = embedded.Str("model");
        var tokenizer = (await GetAsync("/api/v1/models")).EnumerateArray().Single(m => m.Str("kind") == "tokenizer");

        await using var ui = await app.OpenAsync(output, "#/explore");
        var page = ui.Page;
        // The page's embedding model is the one the API answers with when no model is named (the classifier).
        await Expect(page.Locator("#pick-embedder")).ToHaveValueAsync(apiEmbedder);
        Assert.StartsWith("classifier-", apiEmbedder);

        // Pickers show the short name; the full name (and id) is the hover text of the option and of the closed picker.
        var option = page.Locator("#pick-tokenizer option").First;
        await Expect(option).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^VQ-KD tokenizer ★ — "));
        var fullName = tokenizer.Str("name");
        Assert.StartsWith("VQ-KD tokenizer distilled from the teacher", fullName);
        await Expect(option).ToHaveAttributeAsync("title", $"{fullName} ({tokenizer.Str("id")})");
        await Expect(page.Locator("#pick-tokenizer")).ToHaveAttributeAsync("title", $"{fullName} ({tokenizer.Str("id")})");
        ui.AssertNoConsoleErrors();
    }

    [Fact]
    public async Task TrainForm_OffersExactlyTheModelSizesTheApiAccepts()
    {
        var sizes = (await GetAsync("/api/v1/info")).GetProperty("modelSizes").EnumerateArray().Select(s => s.GetString()).ToList();
        Assert.Equal(["micro", "small", "tiny", "base"], sizes);

        await using var ui = await app.OpenAsync(output, "#/train");
        var options = ui.Page.Locator("#job-preset option");
        await Expect(options).ToHaveCountAsync(sizes.Count);
        Assert.Equal(string.Join(",", sizes), await options.EvaluateAllAsync<string>("os => os.map(o => o.value).join(',')"));
        ui.AssertNoConsoleErrors();
    }
}
