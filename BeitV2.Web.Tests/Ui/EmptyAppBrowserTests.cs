using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>A fresh clone has no models: the pages say so and how to get one, and make no failing requests.</summary>
[Collection(EmptyUiCollection.Name)]
public sealed class EmptyAppBrowserTests(EmptyUiApp app, ITestOutputHelper output)
{
    [Fact]
    public async Task NoModels_EveryPageExplainsHowToImportOrTrainOne()
    {
        await using var ui = await app.OpenAsync(output, "#/explore");
        var page = ui.Page;
        await Expect(page.Locator("#pick-tokenizer")).ToBeDisabledAsync();
        await Expect(page.Locator(".picker .missing").First).ToContainTextAsync("No tokenizer is registered");

        await page.Locator("#explore-files").SetInputFilesAsync(Path.Combine(FixturePaths.ImagesDir, "coffee.png"));
        var card = page.Locator("article.card").First;
        await Expect(card.Locator(".tokens-panel .missing")).ToContainTextAsync("Import a VQ-KD checkpoint");
        await Expect(card.Locator(".classes-panel .missing")).ToContainTextAsync("No classifier is registered");
        await Expect(card.Locator(".segment-panel .missing")).ToContainTextAsync("No segmenter is registered");
        await ui.ScreenshotAsync("empty-explore");

        await page.Locator("nav a[data-page=models]").ClickAsync();
        await Expect(page.Locator("#models-list")).ToContainTextAsync("No models are registered yet");
        await Expect(page.Locator("#missing-models .missing").First).ToBeVisibleAsync();

        await page.Locator("nav a[data-page=train]").ClickAsync();
        await page.Locator("#job-type").SelectOptionAsync("tokenizer");
        await Expect(page.Locator("#job-form")).ToContainTextAsync("No teacher, backbone or classifier is registered");
        await page.Locator("#start-job").ClickAsync();
        await Expect(page.Locator("#job-form .inline-error")).ToContainTextAsync("required");
        await ui.ScreenshotAsync("empty-train");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }
}
