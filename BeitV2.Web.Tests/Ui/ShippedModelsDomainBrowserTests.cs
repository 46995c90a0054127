using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>Explore says what the shipped models know: their domain by the pickers, a warning on a photo far outside it, the segmenter's measured mIoU by its mask.</summary>
[Collection(ShippedUiCollection.Name)]
public sealed class ShippedModelsDomainBrowserTests(ShippedUiApp app, ITestOutputHelper output)
{
    [Fact]
    public async Task APhoto_IsFlaggedAsOutsideTheModelsDomain_AndAFashionMnistImageIsNot()
    {
        await using var ui = await app.OpenAsync(output, "#/explore");
        var page = ui.Page;
        await Expect(page.Locator("#domain-classifier")).ToContainTextAsync("Trained on Fashion-MNIST");

        await page.Locator("button.sample[aria-label='Add sample: Rocket launch']").ClickAsync();
        var photo = page.Locator("article.card").First;
        await Expect(photo.Locator(".card-ood")).ToBeVisibleAsync();
        await Expect(photo.Locator(".card-ood")).ToContainTextAsync("looks nothing like the Fashion-MNIST images");
        await Expect(photo.Locator(".card-ood")).ToContainTextAsync("its answers mean little");
        await Expect(photo.Locator(".segment-panel .seg-quality")).ToContainTextAsync("Measured mIoU");
        await Expect(photo.Locator(".segment-panel .seg-quality")).ToContainTextAsync("Fashion-MNIST");
        await Expect(photo).ToHaveAttributeAsync("data-ood-segmenter", "outside");
        await Expect(photo.Locator(".segment-panel .seg-ood")).ToContainTextAsync("its mask means little");
        await ui.ScreenshotAsync("explore-out-of-domain");

        await page.Locator("button.sample[aria-label='Add sample: Fashion-MNIST: Ankle boot']").ClickAsync();
        var boot = page.Locator("article.card").First;   // new cards come first
        await Expect(boot.Locator("h2")).ToHaveTextAsync("Fashion-MNIST: Ankle boot");
        foreach (var kind in new[] { "classifier", "segmenter", "embedder" })
            await Expect(boot).ToHaveAttributeAsync($"data-{kind}", "done");
        await Expect(boot).ToHaveAttributeAsync("data-out-of-domain", "inside");
        await Expect(boot).ToHaveAttributeAsync("data-ood-classifier", "inside");
        await Expect(boot.Locator(".card-ood")).ToBeHiddenAsync();
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }
}
