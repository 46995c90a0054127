using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.TestSupport;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// Explore's visual words from a collection indexed with another tokenizer than the one picked: the page says so in
/// words (the service's 409) and names the tokenizer to pick; picking it shows the collection's patches.
/// </summary>
[Collection(UiCollection.Name)]
public sealed class CollectionWordsBrowserTests(UiApp app, ITestOutputHelper output)
{
    [Fact]
    public async Task ExploreWords_FromACollectionOfAnotherTokenizer_SayWhichTokenizerToPick_AndShowItsPatchesOnceItIsPicked()
    {
        var other = app.Host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "other tokenizer", makeDefault: false);
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        string? id = null;
        try
        {
            var created = await client.PostAsJsonAsync("/api/v1/collections",
                new { name = "other words", dataset = "fashion-mnist", embeddingModel = app.Backbone.Id, tokenizer = other.Id, maxImages = 20 });
            Assert.Equal(System.Net.HttpStatusCode.Accepted, created.StatusCode);
            id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
            await WaitUntilReadyAsync(client, id);

            await using var ui = await app.OpenAsync(output, "#/explore?collection=" + id);
            var page = ui.Page;
            await Expect(page.Locator("#pick-collection")).ToHaveValueAsync(id);
            await Expect(page.Locator("#pick-tokenizer")).ToHaveValueAsync(app.Tokenizer.Id); // the default, not the collection's
            await page.Locator("#explore-files").SetInputFilesAsync(Path.Combine(FixturePaths.ImagesDir, "coffee.png"));
            var card = page.Locator("article.card").First;
            await Expect(card).ToHaveAttributeAsync("data-tokenizer", "done", new() { Timeout = BrowserTests.Slow });
            await card.Locator("canvas.token-map").ClickAsync(new() { Position = new() { X = 10, Y = 10 } });
            var words = page.Locator("#word-browser");
            await Expect(words.Locator(".inline-error")).ToContainTextAsync($"was indexed with tokenizer '{other.Id}', not '{app.Tokenizer.Id}'");
            await Expect(words.Locator(".inline-error")).ToContainTextAsync("(HTTP 409)");
            await Expect(page.Locator("#word-hint")).ToHaveTextAsync("It was indexed with the tokenizer other tokenizer: pick that tokenizer above, or another collection.");
            await Expect(words.Locator("a.patch")).ToHaveCountAsync(0);
            await ui.ScreenshotAsync("explore-collection-other-tokenizer");

            // The collection's own tokenizer: the token map is redrawn with its codes, and a click shows its patches.
            await page.Locator("#pick-tokenizer").SelectOptionAsync(other.Id);
            await Expect(card).ToHaveAttributeAsync("data-tokenizer", "done", new() { Timeout = BrowserTests.Slow });
            await Expect(card.Locator(".tokens-panel .caption")).ToContainTextAsync("other tokenizer");
            await card.Locator("canvas.token-map").ClickAsync(new() { Position = new() { X = 10, Y = 10 } });
            await Expect(words).ToHaveAttributeAsync("data-source", "collection");
            await Expect(words.Locator(".inline-error")).ToHaveCountAsync(0);
            await Expect(page.Locator("#word-summary")).ToContainTextAsync("in the collection other words");
            ui.AssertNoConsoleErrors("409");
        }
        finally
        {
            if (id is not null) await client.DeleteAsync("/api/v1/collections/" + id);
            app.Host.Registry.Delete(other.Id);
        }
        app.Host.AssertNoServerErrors();
    }

    private static async Task WaitUntilReadyAsync(HttpClient client, string id)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(BrowserTests.Slow);
        while (true)
        {
            var c = JsonDocument.Parse(await client.GetStringAsync("/api/v1/collections/" + id)).RootElement;
            var status = c.GetProperty("status").GetString();
            if (status == "ready") return;
            Assert.True(status == "indexing", $"collection {id} is {status}: {c}");
            Assert.True(DateTime.UtcNow < deadline, $"collection {id} is not ready after {BrowserTests.Slow / 1000} s");
            await Task.Delay(250);
        }
    }
}
