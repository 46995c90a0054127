using BeitV2.Web.Tests.Api;
using JobClient = BeitV2.Web.Tests.Jobs.Jobs;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// A newcomer's first tour on a fresh clone, with the shipped models: Explore on Fashion-MNIST samples and a photo
/// (the shipped classifier names the garments, the photo is flagged, a visual word spans several images), then the
/// Train form's first choice run to the end. The README's screenshots are taken here (<c>BEITV2_README_SCREENSHOTS</c>),
/// so they show what a fresh clone shows.
/// </summary>
[Collection(ShippedUiCollection.Name)]
public sealed class ShippedModelsTourBrowserTests(ShippedUiApp app, ITestOutputHelper output)
{
    [Fact]
    public async Task Explore_ShippedModelsNameTheGarments_FlagThePhoto_AndAVisualWordSpansTheImages()
    {
        await using var ui = await app.OpenAsync(output, "#/explore");
        var page = ui.Page;
        // Newest first: the photo ends up last, the Fashion-MNIST items above it.
        string[] samples = ["Rocket launch", "Fashion-MNIST: Bag", "Fashion-MNIST: Sneaker", "Fashion-MNIST: Ankle boot"];
        foreach (var sample in samples)
        {
            await page.Locator($"button.sample[aria-label='Add sample: {sample}']").ClickAsync();
            var card = page.Locator("article.card").First;
            await Expect(card.Locator("h2")).ToHaveTextAsync(sample);
            foreach (var part in new[] { "tokenizer", "classifier", "segmenter", "embedder" })
                await Expect(card).ToHaveAttributeAsync("data-" + part, "done", new() { Timeout = BrowserTests.Slow });
        }
        var cards = page.Locator("article.card");
        await Expect(cards).ToHaveCountAsync(samples.Length);
        foreach (var (garment, index) in new[] { ("Ankle boot", 0), ("Sneaker", 1), ("Bag", 2) })
        {
            var card = cards.Nth(index);
            await Expect(card.Locator("ol.bars li").First.Locator(".bar-label")).ToHaveTextAsync(garment);
            await Expect(card).ToHaveAttributeAsync("data-out-of-domain", "inside");
        }
        await Expect(cards.Nth(3)).ToHaveAttributeAsync("data-out-of-domain", "outside");
        await Expect(cards.Nth(3).Locator(".card-ood")).ToBeVisibleAsync();

        // A visual word of the shipped tokenizer: a patch of the ankle boot, then that code in every image.
        var map = cards.First.Locator("canvas.token-map");
        await Expect(map).ToHaveAttributeAsync("data-rows", "7");
        var box = (await map.BoundingBoxAsync())!;
        await map.ClickAsync(new() { Position = new() { X = box.Width / 2, Y = box.Height * 0.6f } });
        var words = page.Locator("#word-browser");
        await Expect(words).ToBeVisibleAsync();
        await Expect(words.Locator("h2")).ToContainTextAsync("Visual word");
        Assert.True(await words.Locator("button.patch").CountAsync() >= 2, "the word browser shows fewer than two patches");

        await ui.ScreenshotAsync("shipped-explore");
        await page.SetViewportSizeAsync(1280, 1100);
        await page.EvaluateAsync("() => document.getElementById('word-browser').scrollIntoView()");
        await ui.ReadmeScreenshotAsync("explore");
        await cards.Nth(3).EvaluateAsync("card => card.scrollIntoView({ block: 'end' })");
        await ui.ReadmeScreenshotAsync("explore-out-of-domain");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Train_FineTuningTheShippedMimModel_RunsToTheEnd_AndItsModelSaysWhatItKnows()
    {
        var mim = app.Host.Registry.DefaultId("pretrain")!;
        var shippedClassifier = app.Host.Registry.DefaultId("classifier")!;
        await using var ui = await app.OpenAsync(output, "#/train");
        var page = ui.Page;
        await Expect(page.Locator("#job-base")).ToHaveValueAsync(mim);
        // The first choice on a budget this test can afford on any machine (the form's defaults take minutes).
        await page.Locator("#job-name").FillAsync("fine-tune of the shipped MIM model");
        await page.Locator("#job-epochs").FillAsync("2");
        await page.Locator("#job-maxTrainImages").FillAsync("2000");
        await page.Locator("#job-maxValImages").FillAsync("500");
        await BrowserTests.StartJobFromTheFormAsync(page);
        var jobId = page.Url[(page.Url.IndexOf("#/jobs/", StringComparison.Ordinal) + 7)..];
        await Expect(page.Locator("#page-job")).ToHaveAttributeAsync("data-status", "succeeded", new() { Timeout = BrowserTests.Slow * 2 });
        await Expect(page.Locator("#job-progress-text")).ToContainTextAsync("epoch 2 of 2");
        await Expect(page.Locator("figure[data-chart='Accuracy']")).ToBeVisibleAsync();
        await Expect(page.Locator("#job-model-state")).ToHaveAttributeAsync("data-default", "false");
        await Expect(page.Locator("#job-make-default")).ToHaveTextAsync("Make it the default classifier");

        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var job = await JobClient.GetAsync(client, jobId);
        Assert.Equal(mim, job.Str("baseModel"));
        var model = await client.GetAsync($"/api/v1/models/{job.Str("outputModel")}").JsonAsync();
        var domain = model.GetProperty("domain");
        Assert.Equal("fashion-mnist", domain.Str("datasetId"));
        Assert.Equal("accuracy", domain.GetProperty("quality").Str("metric"));
        Assert.True(domain.GetProperty("outOfDomain").ValueKind == System.Text.Json.JsonValueKind.Object, "the job's model has no out-of-domain fit");
        Assert.Equal(shippedClassifier, app.Host.Registry.DefaultId("classifier")); // not made default by itself

        await page.SetViewportSizeAsync(1280, 1100);
        await page.EvaluateAsync("() => window.scrollTo(0, 0)");
        await ui.ReadmeScreenshotAsync("train-job");
        await page.Locator("nav a[data-page=train]").ClickAsync();
        await Expect(page.Locator($"tr[data-job-id='{jobId}'] .badge")).ToHaveTextAsync("succeeded");
        await Expect(page.Locator($"tr[data-job-id='{jobId}'] a[href='#/explore?model={job.Str("outputModel")}']")).ToBeVisibleAsync();
        await ui.ReadmeScreenshotAsync("train");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }
}
