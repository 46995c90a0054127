using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using BeitV2.Web.Collections;
using BeitV2.Web.Tests.Jobs;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// The Collections page with the shipped models: a collection made from the form indexes Fashion-MNIST images while the
/// page follows its job live, is searched by a sample and by one of its items, lends its visual words to Explore, and
/// is deleted.
/// </summary>
[Collection(ShippedUiCollection.Name)]
public sealed class CollectionsBrowserTests(ShippedUiApp app, ITestOutputHelper output)
{
    private const int Images = 300;

    [Fact]
    public async Task Collection_CreatedFromTheForm_IndexesLive_IsSearchedByImageAndItem_FeedsExplore_AndIsDeleted()
    {
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var models = JsonDocument.Parse(await client.GetStringAsync("/api/v1/models")).RootElement.EnumerateArray().ToList();
        string DefaultFor(string endpoint) => models.Single(m => m.TryGetProperty("defaultFor", out var d) && d.EnumerateArray().Any(x => x.GetString() == endpoint))
            .GetProperty("id").GetString()!;
        var embedder = DefaultFor("embeddings");
        var tokenizer = DefaultFor("tokens");

        await using var ui = await app.OpenAsync(output, "#/collections");
        var page = ui.Page;
        await Expect(page.Locator("#collections-title")).ToHaveTextAsync("Collections");
        await Expect(page.Locator("nav a[data-page=collections]")).ToHaveAttributeAsync("aria-current", "page");
        // The form's first choices are what the API uses when a request names none.
        await Expect(page.Locator("#coll-dataset")).ToHaveValueAsync("fashion-mnist");
        await Expect(page.Locator("#coll-embedder")).ToHaveValueAsync(embedder);
        await Expect(page.Locator("#coll-tokenizer")).ToHaveValueAsync(tokenizer);
        await Expect(page.Locator("#coll-pooling")).ToHaveValueAsync("cls");
        // A missing name is said next to the form, and nothing is created.
        await page.Locator("#create-collection").ClickAsync();
        await Expect(page.Locator("#collection-form .inline-error")).ToContainTextAsync("Give the collection a name.");

        await page.Locator("#coll-name").FillAsync("Clothes");
        await page.Locator("#coll-max").FillAsync(Images.ToString(CultureInfo.InvariantCulture));
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "connected");
        // The job waits after reporting its last step (the only one it reports with 300 images): the page must show
        // that report, from the hub, while the collection is still indexing.
        var lastStep = (Images + IndexJobs.DefaultBatchSize - 1) / IndexJobs.DefaultBatchSize;
        using var hold = new HeldStep(app.Host.DataDirectory, lastStep);
        await page.Locator("#create-collection").ClickAsync();
        // The page moves on when the server answered the create, which loads (and on first use exports) the embedding
        // model: on a loaded machine that can take longer than a click's usual wait.
        await page.WaitForURLAsync(new Regex("#/collections/clothes-[0-9a-f]{6}$"), new() { Timeout = BrowserTests.Slow });
        var id = page.Url[(page.Url.IndexOf("#/collections/", StringComparison.Ordinal) + 14)..];
        var section = page.Locator("#page-collections");
        await Expect(page.Locator("#collections-title")).ToHaveTextAsync("Clothes");
        await Expect(page.Locator("#collection-progress")).ToHaveAttributeAsync("value", "1", new() { Timeout = BrowserTests.Slow });
        await Expect(section).ToHaveAttributeAsync("data-status", "indexing");
        await Expect(page.Locator("#collection-search .dropzone")).ToBeHiddenAsync();
        await Expect(page.Locator("#collection-search")).ToContainTextAsync("Search opens once the collection is indexed.");
        var jobId = JsonDocument.Parse(await client.GetStringAsync("/api/v1/collections/" + id)).RootElement.GetProperty("job").GetString()!;
        await Expect(page.Locator("#collection-job")).ToHaveAttributeAsync("href", "#/jobs/" + jobId);
        await ui.ScreenshotAsync("collection-indexing");
        hold.Release();
        await Expect(section).ToHaveAttributeAsync("data-status", "ready", new() { Timeout = BrowserTests.Slow });
        await Expect(page.Locator("#collection-progress")).ToBeHiddenAsync();
        await Expect(page.Locator("#collection-view dl.meta")).ToContainTextAsync(Images.ToString(CultureInfo.InvariantCulture));
        // Its job's page links back to it.
        await page.Locator("#collection-job").ClickAsync();
        await Expect(page.Locator("#page-job")).ToHaveAttributeAsync("data-status", "succeeded");
        await page.Locator("#job-collection").ClickAsync();
        await Expect(section).ToHaveAttributeAsync("data-status", "ready");

        // Code statistics: the same numbers as the API's, the histogram drawn, the top codes of the classes.
        var codes = JsonDocument.Parse(await client.GetStringAsync($"/api/v1/collections/{id}/codes")).RootElement;
        await Expect(page.Locator("#code-stats")).ToContainTextAsync($"{codes.GetProperty("usedCodes").GetInt32():N0} of {codes.GetProperty("codebookSize").GetInt32():N0} codes used");
        Assert.True(await page.EvaluateAsync<bool>("() => { const c = document.getElementById('code-usage'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; for (let i = 3; i < d.length; i += 4) if (d[i]) return true; return false; }"),
            "the code usage canvas is blank");
        await Expect(page.Locator("table.class-codes tbody tr")).ToHaveCountAsync(codes.GetProperty("topCodesPerClass").GetArrayLength());

        // Search by a sample: scores, most similar first, labels and thumbnails.
        await page.Locator("#collection-search button.sample[data-file='fashion-0-ankle-boot.png']").ClickAsync();
        var results = page.Locator("#search-results");
        await Expect(results).ToHaveAttributeAsync("data-state", "done", new() { Timeout = BrowserTests.Slow });
        var hits = results.Locator("button.result");
        await Expect(hits).ToHaveCountAsync(10);
        var scores = new List<double>();
        for (var i = 0; i < 10; i++) scores.Add(double.Parse((await hits.Nth(i).GetAttributeAsync("data-score"))!, CultureInfo.InvariantCulture));
        Assert.All(scores, s => Assert.InRange(s, -1.0001, 1.0001));
        Assert.Equal(scores.OrderByDescending(s => s), scores);
        await Expect(hits.First.Locator(".score")).ToHaveTextAsync(scores[0].ToString("F3", CultureInfo.InvariantCulture));
        await Expect(hits.First.Locator(".label")).ToHaveTextAsync("Ankle boot"); // the shipped model's nearest neighbour of a boot
        await Expect(hits.First.Locator("img")).ToHaveJSPropertyAsync("complete", true);
        Assert.True(await hits.First.Locator("img").EvaluateAsync<int>("img => img.naturalWidth") > 0, "the thumbnail did not load");
        await ui.ScreenshotAsync("collection-search");
        await page.SetViewportSizeAsync(1280, 1100);
        await ui.ReadmeScreenshotAsync("collection-search");

        // A click on a result searches by that item: the item itself comes first.
        var item = (await hits.Nth(2).GetAttributeAsync("data-item"))!;
        await hits.Nth(2).ClickAsync();
        await page.WaitForURLAsync(new Regex($"#/collections/{id}\\?item={item}$"));
        await Expect(page.Locator("#search-query")).ToContainTextAsync("item " + item);
        await Expect(results.Locator("button.result").First).ToHaveAttributeAsync("data-item", item, new() { Timeout = BrowserTests.Slow });
        Assert.InRange(double.Parse((await results.Locator("button.result").First.GetAttributeAsync("data-score"))!, CultureInfo.InvariantCulture), 0.999, 1.0001);

        // On a phone, the collection with its results fits the screen.
        await page.SetViewportSizeAsync(390, 844);
        var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - document.documentElement.clientWidth");
        Assert.True(overflow <= 1, $"the collection page scrolls sideways by {overflow}px on a 390px screen");
        await page.SetViewportSizeAsync(1280, 900);

        // Explore with this collection chosen: a click on a patch shows that visual word across the collection.
        await page.Locator("#collection-explore").ClickAsync();
        await Expect(page.Locator("#pick-collection")).ToHaveValueAsync(id);
        await Expect(page.Locator("#pick-tokenizer")).ToHaveValueAsync(tokenizer);
        await page.Locator("button.sample[aria-label='Add sample: Fashion-MNIST: Ankle boot']").ClickAsync();
        var card = page.Locator("article.card").First;
        await Expect(card).ToHaveAttributeAsync("data-tokenizer", "done", new() { Timeout = BrowserTests.Slow });
        var map = card.Locator("canvas.token-map");
        await map.ClickAsync(new() { Position = new() { X = 4, Y = 4 } }); // the corner: background, in every image
        var code = int.Parse((await map.GetAttributeAsync("data-hover-code"))!, CultureInfo.InvariantCulture);
        var words = page.Locator("#word-browser");
        await Expect(words).ToHaveAttributeAsync("data-source", "collection");
        var first = JsonDocument.Parse(await client.GetStringAsync($"/api/v1/models/{tokenizer}/codebook/{code}?collection={id}&limit=1")).RootElement;
        var total = first.GetProperty("total").GetInt64();
        Assert.True(total > 48, $"the background code {code} has only {total} patches in {Images} images");
        await Expect(page.Locator("#word-summary")).ToContainTextAsync($"{total:N0} patches in the collection Clothes");
        var patches = words.Locator("a.patch");
        await Expect(patches).ToHaveCountAsync(48);
        var firstPatch = first.GetProperty("patches")[0];
        await Expect(patches.First).ToHaveAttributeAsync("href", $"#/collections/{id}?item={firstPatch.GetProperty("item").GetInt64()}");
        await Expect(patches.First).ToContainTextAsync($"({firstPatch.GetProperty("row").GetInt32()},{firstPatch.GetProperty("col").GetInt32()})");
        Assert.True(await patches.First.Locator("img").EvaluateAsync<bool>("img => img.decode().then(() => img.naturalWidth >= 48)"), "the crop did not load");
        await page.Locator("#word-more").ClickAsync();
        await Expect(patches).ToHaveCountAsync((int)Math.Min(96, total));
        await ui.ScreenshotAsync("explore-collection-words");
        // A patch on the boot itself (the sole, near the middle of the bottom half) is another word:
        // the browser follows the click.
        var box = (await map.BoundingBoxAsync())!;
        await map.ClickAsync(new() { Position = new() { X = box.Width * 0.5f, Y = box.Height * 0.64f } });
        var shoeCode = int.Parse((await map.GetAttributeAsync("data-hover-code"))!, CultureInfo.InvariantCulture);
        Assert.NotEqual(code, shoeCode);
        await Expect(page.Locator("#word-summary")).ToContainTextAsync($"Code {shoeCode} of");
        await Expect(patches.First).ToBeVisibleAsync();
        await page.EvaluateAsync("() => document.getElementById('word-browser').scrollIntoView()");
        await ui.ReadmeScreenshotAsync("explore-collection-words");
        // Back to the images uploaded here: the word browser reads them again.
        await page.Locator("#pick-collection").SelectOptionAsync(new SelectOptionValue { Value = "" });
        await Expect(words).ToHaveAttributeAsync("data-source", "session");
        await Expect(words.Locator("a.patch")).ToHaveCountAsync(0);
        await Expect(words.Locator("button.patch").First).ToBeVisibleAsync();

        // Delete from the list (two clicks): the row goes, and so does the collection.
        await page.Locator("nav a[data-page=collections]").ClickAsync();
        var row = page.Locator($"tr[data-collection-id='{id}']");
        await Expect(row).ToHaveAttributeAsync("data-status", "ready");
        await row.Locator("button[data-action=delete]").ClickAsync();
        await Expect(row.Locator("button[data-action=delete]")).ToHaveTextAsync("Confirm delete");
        await row.Locator("button[data-action=delete]").ClickAsync();
        await Expect(row).ToHaveCountAsync(0);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/api/v1/collections/" + id)).StatusCode);
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }
}
