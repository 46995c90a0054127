using System.Net;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Jobs;
using JobClient = BeitV2.Web.Tests.Jobs.Jobs;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// The browser UI in Debian's Chromium against the real app on a Kestrel port: Explore (token map,
/// predictions, mask, visual words, similarity), Train (a job started from the form, charts growing
/// live, cancel, resume, reload), Models &amp; datasets, and readable errors. Waits are on UI state,
/// never on time; every test also checks the browser console stayed clean.
/// </summary>
[Collection(UiCollection.Name)]
public sealed class BrowserTests(UiApp app, ITestOutputHelper output)
{
    internal const float Slow = 180_000; // ms: jobs on a loaded 2-core machine (Hangfire may take ~15 s to pick one up)

    /// <summary>Records every data-points change of the Loss chart with the job status at that moment.</summary>
    private const string ChartRecorder = """
        window.__lossPoints = [];
        new MutationObserver((records) => {
          for (const r of records) {
            if (r.target.dataset && r.target.dataset.chart === 'Loss') {
              const page = document.getElementById('page-job');
              window.__lossPoints.push({ points: Number(r.target.dataset.points), status: page ? (page.dataset.status || '') : '' });
            }
          }
        }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-points'] });
        """;

    private static string Photo(string name) => Path.Combine(FixturePaths.ImagesDir, name);

    /// <summary>Submits the Train form and waits for the job page (or fails with the form's error message).</summary>
    internal static async Task StartJobFromTheFormAsync(IPage page)
    {
        await page.Locator("#start-job").ClickAsync();
        await page.WaitForFunctionAsync("() => location.hash.startsWith('#/jobs/job-') || document.querySelector('#job-form .inline-error')",
            null, new() { Timeout = Slow });
        var error = page.Locator("#job-form .inline-error");
        if (await error.CountAsync() > 0) Assert.Fail("The job was not started: " + await error.First.TextContentAsync());
    }

    [Fact]
    public async Task Explore_UploadAPhoto_ShowsTokenMapPredictionsMaskAndVisualWords()
    {
        await using var ui = await app.OpenAsync(output, "#/explore");
        var page = ui.Page;
        await Expect(page.Locator("#pick-tokenizer")).ToHaveValueAsync(app.Tokenizer.Id);
        await Expect(page.Locator("#pick-classifier")).ToHaveValueAsync(app.Classifier.Id);
        await Expect(page.Locator("#pick-segmenter")).ToHaveValueAsync(app.Segmenter.Id);

        await page.Locator("#explore-files").SetInputFilesAsync(Photo("chelsea.png"));
        var card = page.Locator("article.card").First;
        await Expect(card.Locator("h2")).ToHaveTextAsync("chelsea.png");
        foreach (var part in new[] { "tokenizer", "classifier", "segmenter", "embedder" })
            await Expect(card).ToHaveAttributeAsync("data-" + part, "done", new() { Timeout = Slow });

        // Token map: drawn (many colours), 4×4 grid of the micro tokenizer, hover names the code.
        var map = card.Locator("canvas.token-map");
        await Expect(map).ToBeVisibleAsync();
        var colours = await map.EvaluateAsync<int>("""
            c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const s = new Set();
                   for (let i = 0; i < d.length; i += 4 * 97) s.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]); return s.size; }
            """);
        Assert.True(colours > 20, $"the token map looks blank ({colours} colours)");
        await Expect(map).ToHaveAttributeAsync("data-rows", "4");
        await map.HoverAsync(new() { Position = new() { X = 20, Y = 20 } });
        var tip = card.Locator(".tokens-panel .tooltip");
        await Expect(tip).ToBeVisibleAsync();
        await Expect(tip).ToContainTextAsync("code ");

        // Predictions: the three labels of the seeded classifier as bars.
        var bars = card.Locator("ol.bars li");
        await Expect(bars).ToHaveCountAsync(3);
        var labels = await card.Locator("ol.bars .bar-label").AllTextContentsAsync();
        Assert.Equal(UiApp.ClassifierLabels.Order(), labels.Order());

        // Segmentation: the mask overlay at the photo's size, a legend and a working opacity slider.
        var mask = card.Locator(".mask-stack canvas.mask");
        await Expect(mask).ToBeVisibleAsync();
        var (w, h) = TestImages.DecodedSize(File.ReadAllBytes(Photo("chelsea.png")));
        Assert.Equal(w.ToString(), await mask.GetAttributeAsync("width"));
        Assert.Equal(h.ToString(), await mask.GetAttributeAsync("height"));
        Assert.True(await card.Locator("ul.legend li").CountAsync() >= 1);
        var legend = await card.Locator("ul.legend li").AllTextContentsAsync();
        Assert.All(legend, l => Assert.Contains(UiApp.SegmenterLabels, s => l.Contains(s)));
        await card.Locator(".segment-panel input[type=range]").FillAsync("20");
        await Expect(mask).ToHaveCSSAsync("opacity", "0.2");

        // A sample image too: two images → a similarity matrix.
        await page.Locator("button.sample[title='Coffee cup']").ClickAsync();
        await Expect(page.Locator("article.card")).ToHaveCountAsync(2);
        await Expect(page.Locator("article.card").First).ToHaveAttributeAsync("data-embedder", "done", new() { Timeout = Slow });
        await Expect(page.Locator("#similarity table tbody tr")).ToHaveCountAsync(2);
        await Expect(page.Locator("article.card").First).ToHaveAttributeAsync("data-tokenizer", "done", new() { Timeout = Slow });

        // Visual-word browser: click a patch → every patch with that code, across both images.
        await map.ClickAsync(new() { Position = new() { X = 20, Y = 20 } });
        var words = page.Locator("#word-browser");
        await Expect(words).ToBeVisibleAsync();
        await Expect(words.Locator("h2")).ToContainTextAsync("Visual word");
        Assert.True(await words.Locator("button.patch").CountAsync() >= 1);
        // Keyboard: the map is focusable, arrows move, Enter picks the code under the cursor.
        await map.FocusAsync();
        await page.Keyboard.PressAsync("ArrowRight");
        await page.Keyboard.PressAsync("Enter");
        await Expect(words.Locator("#word-summary")).ToContainTextAsync("patch");

        await ui.ScreenshotAsync("explore");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Explore_CorruptOrNonImageUpload_ShowsTheServicesReadableError()
    {
        await using var ui = await app.OpenAsync(output, "#/explore");
        var page = ui.Page;
        await Expect(page.Locator("#pick-tokenizer")).ToHaveValueAsync(app.Tokenizer.Id);

        await page.Locator("#explore-files").SetInputFilesAsync(Photo("truncated.jpg"));
        var error = page.Locator("article.card.failed .inline-error");
        await Expect(error).ToBeVisibleAsync(new() { Timeout = Slow });
        await Expect(error).ToHaveAttributeAsync("role", "alert");
        await Expect(error).ToContainTextAsync("truncated.jpg");
        await Expect(error).ToContainTextAsync("truncated");
        await Expect(error).ToContainTextAsync("HTTP 400");

        await page.Locator("#explore-files").SetInputFilesAsync(new FilePayload { Name = "notes.txt", MimeType = "text/plain", Buffer = "not a picture"u8.ToArray() });
        await Expect(page.Locator("article.card.failed")).ToHaveCountAsync(2, new() { Timeout = Slow });
        await Expect(page.Locator("article.card.failed").First.Locator(".inline-error")).ToContainTextAsync("not an image");

        await ui.ScreenshotAsync("explore-errors");
        // The browser logs the rejected requests themselves; nothing else may go wrong.
        ui.AssertNoConsoleErrors("status of 400", "status of 415");
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Train_StartATinyJobFromTheForm_ChartsGrowLiveUntilItSucceeds()
    {
        await using var ui = await app.OpenAsync(output, "#/train", initScript: ChartRecorder);
        var page = ui.Page;
        await page.Locator("#job-type").SelectOptionAsync("finetune");
        await Expect(page.Locator("#job-dataset")).ToHaveValueAsync("fashion-mnist");
        await page.Locator("#job-name").FillAsync("ui fine-tune");
        await page.Locator("#job-epochs").FillAsync("4");
        await page.Locator("#job-batchSize").FillAsync("16");
        await page.Locator("#job-maxTrainImages").FillAsync("512");
        await page.Locator("#job-maxValImages").FillAsync("32");
        await page.Locator("details.more summary").ClickAsync();
        await page.Locator("#job-reportEverySteps").FillAsync("1");
        // Held half-way until the page shows it running: the second half then streams in live, on any machine.
        using var hold = new HeldStep(app.Host.DataDirectory, 64);
        await StartJobFromTheFormAsync(page);
        var jobId = page.Url[(page.Url.IndexOf("#/jobs/", StringComparison.Ordinal) + 7)..];
        output.WriteLine("job " + jobId);
        await Expect(page.Locator("#job-title")).ToHaveTextAsync("ui fine-tune");
        var jobPage = page.Locator("#page-job");
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "running", new() { Timeout = Slow });
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "connected");
        using (var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) }) await JobClient.WaitForStepAsync(client, jobId, hold.Step, TimeSpan.FromMilliseconds(Slow));
        await page.WaitForFunctionAsync("() => Number(document.querySelector(\"figure[data-chart='Loss']\")?.dataset.points) > 0", null, new() { Timeout = Slow });
        hold.Release();
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "succeeded", new() { Timeout = Slow });

        // Live: the Loss chart got more points while the job was still running (pushed over SignalR).
        var seen = await page.EvaluateAsync<JsonElement>("() => window.__lossPoints");
        var running = seen.EnumerateArray().Where(e => e.GetProperty("status").GetString() == "running")
            .Select(e => e.GetProperty("points").GetInt32()).Where(n => n > 0).ToList();
        output.WriteLine("points while running: " + string.Join(",", running));
        Assert.True(running.Distinct().Count() >= 2, $"the chart did not grow while running: {seen}");
        Assert.True(running.Last() > running.First());

        var loss = page.Locator("figure[data-chart='Loss']");
        var finalPoints = int.Parse((await loss.GetAttributeAsync("data-points"))!);
        Assert.True(finalPoints >= running.Max());
        await Expect(page.Locator("figure[data-chart='Accuracy']")).ToBeVisibleAsync();
        await Expect(page.Locator("#job-progress")).ToHaveJSPropertyAsync("value", 1);
        await Expect(page.Locator("#job-progress-text")).ToContainTextAsync("step 128 of 128");
        await Expect(page.Locator("#job-checkpoints tbody tr")).Not.ToHaveCountAsync(0);
        // Epochs counted from 1 in the progress line and in the checkpoint list alike: the last checkpoint is epoch 4 of 4.
        await Expect(page.Locator("#job-progress-text")).ToContainTextAsync("epoch 4 of 4");
        var checkpointEpochs = await page.Locator("#job-checkpoints tbody tr td:nth-child(2)").AllTextContentsAsync();
        Assert.Equal("4", checkpointEpochs[^1]);
        Assert.All(checkpointEpochs, e => Assert.InRange(int.Parse(e), 1, 4));
        await Expect(page.Locator("#job-log li").Filter(new() { HasText = "finished" })).ToHaveCountAsync(1);
        await Expect(page.Locator("#job-explore")).ToBeVisibleAsync();
        await Expect(page.Locator("#job-cancel")).ToBeDisabledAsync();

        // A job's model does not become the default by itself: the page says so and offers to make it the default.
        var modelState = page.Locator("#job-model-state");
        await Expect(modelState).ToHaveAttributeAsync("data-default", "false");
        await Expect(modelState).ToContainTextAsync("not the default classifier");
        await Expect(page.Locator("#job-make-default")).ToHaveTextAsync("Make it the default classifier");

        await ui.ScreenshotAsync("train-job");

        await page.Locator("#job-make-default").ClickAsync();
        await Expect(modelState).ToHaveAttributeAsync("data-default", "true");
        await Expect(modelState).ToContainTextAsync("is the default classifier");
        await Expect(page.Locator("#job-make-default")).ToBeHiddenAsync();
        using (var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) })
        {
            var outputModel = (await JobClient.GetAsync(client, jobId)).Str("outputModel");
            Assert.True((await client.GetAsync($"/api/v1/models/{outputModel}").JsonAsync()).GetProperty("isDefault").GetBoolean());
            // Put the original default back for the other tests.
            (await client.PostAsync($"/api/v1/models/{app.Classifier.Id}/default", null)).EnsureSuccessStatusCode();
        }

        // The job list shows it as succeeded, with its output model.
        await page.Locator("nav a[data-page=train]").ClickAsync();
        var row = page.Locator($"tr[data-job-id='{jobId}']");
        await Expect(row.Locator(".badge")).ToHaveTextAsync("succeeded");
        await Expect(row.Locator("a[href^='#/explore?model=']")).ToBeVisibleAsync();
        await ui.ScreenshotAsync("train");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task TokenizerJob_FromTheForm_ShowsTheLiveCodebookUsage()
    {
        await using var ui = await app.OpenAsync(output, "#/train");
        var page = ui.Page;
        await page.Locator("#job-type").SelectOptionAsync("tokenizer");
        // The teacher picker offers the registered backbone (the default teacher of a tokenizer job).
        await Expect(page.Locator("#job-teacher")).ToHaveValueAsync(app.Backbone.Id);
        await page.Locator("#job-epochs").FillAsync("2");
        await page.Locator("#job-batchSize").FillAsync("16");
        await page.Locator("#job-maxTrainImages").FillAsync("128");
        await page.Locator("#job-maxValImages").FillAsync("32");
        await page.Locator("#job-codebookSize").FillAsync("32");
        await StartJobFromTheFormAsync(page);
        await Expect(page.Locator("#page-job")).ToHaveAttributeAsync("data-status", "succeeded", new() { Timeout = Slow });

        var codebook = page.Locator("#job-codebook");
        await Expect(codebook).ToBeVisibleAsync();
        await Expect(page.Locator("#codebook-summary")).ToContainTextAsync("of 32 codes used");
        var used = int.Parse((await codebook.GetAttributeAsync("data-used-codes"))!);
        Assert.InRange(used, 1, 32);
        await Expect(codebook.Locator("canvas.codebook-grid")).ToBeVisibleAsync();
        await Expect(page.Locator("figure[data-chart='Codebook usage']")).ToBeVisibleAsync();
        await Expect(page.Locator("figure[data-chart='Reconstruction cosine']")).ToBeVisibleAsync();
        await ui.ScreenshotAsync("tokenizer-job");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task JobPage_SurvivesAReloadAndAReconnect_CancelAndResumeButtonsWork()
    {
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        // Holds keep the job running wherever the test checks "running", on any machine: at step 100 through the
        // reload; at 600 (and 630, in case the cancel stops it at 600) through the reconnect, the cancel and the resume.
        using var reload = new HeldStep(app.Host.DataDirectory, 100);
        using var late = new HeldStep(app.Host.DataDirectory, 600);
        using var later = new HeldStep(app.Host.DataDirectory, 630);
        var id = await JobClient.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist",
            config = new { epochs = 20, batchSize = 16, maxTrainImages = 512, maxValImages = 32, reportEverySteps = 1 },
        });
        await using var ui = await app.OpenAsync(output, "#/jobs/" + id);
        var page = ui.Page;
        var jobPage = page.Locator("#page-job");
        const string hasPoints = "() => Number(document.querySelector(\"figure[data-chart='Loss']\")?.dataset.points) > 2";
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "running", new() { Timeout = Slow });
        await page.WaitForFunctionAsync(hasPoints, null, new() { Timeout = Slow });

        // A reload keeps the job (its id is in the URL) and catches up from the REST API.
        await page.ReloadAsync();
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "running", new() { Timeout = Slow });
        await page.WaitForFunctionAsync(hasPoints, null, new() { Timeout = Slow });
        await Expect(page.Locator("#job-log li").First).ToBeVisibleAsync();

        // A dropped connection: SignalR reconnects, the page subscribes again, and the chart keeps growing.
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "connected");
        await JobClient.WaitForStepAsync(client, id, reload.Step, TimeSpan.FromMilliseconds(Slow));
        var before = int.Parse((await page.Locator("figure[data-chart='Loss']").GetAttributeAsync("data-points"))!);
        await page.EvaluateAsync("() => window.beitv2Hub.connection.connection.transport.stop()");
        await page.WaitForFunctionAsync("() => window.beitv2Hub.reconnects >= 1", null, new() { Timeout = Slow });
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "connected");
        reload.Release(); // steps 101..600 now arrive over the reconnected hub
        await page.WaitForFunctionAsync($"() => Number(document.querySelector(\"figure[data-chart='Loss']\").dataset.points) > {before + 3}", null, new() { Timeout = Slow });
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "running");

        await page.Locator("#job-cancel").ClickAsync();
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "cancelled", new() { Timeout = Slow });
        await Expect(page.Locator("#job-resume")).ToBeEnabledAsync();
        var stopped = (await JobClient.GetAsync(client, id)).Step();
        // The cancel wrote a checkpoint at the step it stopped (earlier epochs may have written others).
        await Expect(page.Locator("#job-checkpoints tbody tr td:first-child").Filter(new() { HasTextRegex = new System.Text.RegularExpressions.Regex($"^{stopped}$") }))
            .ToHaveCountAsync(1);
        await ui.ScreenshotAsync("job-cancelled");

        await page.Locator("#job-resume").ClickAsync();
        await page.WaitForFunctionAsync($"() => ['queued', 'running'].includes(document.getElementById('page-job').dataset.status)", null, new() { Timeout = Slow });
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "running", new() { Timeout = Slow });
        await page.WaitForFunctionAsync($"() => Number(document.getElementById('job-progress-text').textContent.match(/step (\\d+)/)?.[1]) > {stopped}", null, new() { Timeout = Slow });
        await page.Locator("#job-cancel").ClickAsync();
        await Expect(jobPage).ToHaveAttributeAsync("data-status", "cancelled", new() { Timeout = Slow });
        Assert.Equal(2, (await JobClient.GetAsync(client, id)).Int("runs"));
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task ModelsPage_ListsModelsAndDatasets_SetsTheDefault_ShowsImportErrors()
    {
        await using var ui = await app.OpenAsync(output, "#/models");
        var page = ui.Page;
        var other = page.Locator($"tr[data-model-id='{app.OtherClassifier.Id}']");
        var first = page.Locator($"tr[data-model-id='{app.Classifier.Id}']");
        await Expect(other).ToHaveAttributeAsync("data-default", "false");
        await Expect(first).ToHaveAttributeAsync("data-default", "true");
        await Expect(page.Locator("tr[data-dataset-id='fashion-mnist']")).ToBeVisibleAsync();
        await Expect(page.Locator("tr[data-dataset-id='fashion-mnist-seg']")).ToBeVisibleAsync();

        await other.Locator("button[data-action=default]").ClickAsync();
        await Expect(page.Locator($"tr[data-model-id='{app.OtherClassifier.Id}']")).ToHaveAttributeAsync("data-default", "true");
        await Expect(page.Locator($"tr[data-model-id='{app.Classifier.Id}']")).ToHaveAttributeAsync("data-default", "false");
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var model = await client.GetAsync($"/api/v1/models/{app.OtherClassifier.Id}").JsonAsync();
        Assert.True(model.GetProperty("isDefault").GetBoolean());
        // The default cannot be deleted: its button is disabled.
        await Expect(page.Locator($"tr[data-model-id='{app.OtherClassifier.Id}'] button[data-action=delete]")).ToBeDisabledAsync();
        await ui.ScreenshotAsync("models");

        // Put the original default back for the other tests.
        await page.Locator($"tr[data-model-id='{app.Classifier.Id}'] button[data-action=default]").ClickAsync();
        await Expect(page.Locator($"tr[data-model-id='{app.Classifier.Id}']")).ToHaveAttributeAsync("data-default", "true");

        // An unusable checkpoint: the import's problem detail is shown next to the form.
        await page.Locator("#import-file").SetInputFilesAsync(new FilePayload { Name = "bogus.pth", MimeType = "application/octet-stream", Buffer = "not a checkpoint"u8.ToArray() });
        await page.Locator("#import-kind").SelectOptionAsync("classifier");
        await page.Locator("#import-form button[type=submit]").ClickAsync();
        var error = page.Locator("#import-form .inline-error");
        await Expect(error).ToBeVisibleAsync(new() { Timeout = Slow });
        await Expect(error).ToContainTextAsync("HTTP 4");
        // A dataset zip of class folders: uploaded from the form, listed at once.
        var zip = new MemoryStream();
        using (var archive = new System.IO.Compression.ZipArchive(zip, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
            foreach (var cls in new[] { "cats", "dogs" })
                for (var i = 0; i < 4; i++)
                {
                    using var entry = archive.CreateEntry($"{cls}/{i}.png").Open();
                    entry.Write(TestImages.Png(20, 20, seed: i + (cls == "cats" ? 0 : 100)));
                }
        await page.Locator("#dataset-file").SetInputFilesAsync(new FilePayload { Name = "pets.zip", MimeType = "application/zip", Buffer = zip.ToArray() });
        await page.Locator("#dataset-name").FillAsync("ui pets");
        await page.Locator("#dataset-form button[type=submit]").ClickAsync();
        await Expect(page.Locator("#dataset-form .ok")).ToContainTextAsync("classification, 8 images, 2 classes");
        await Expect(page.Locator("#datasets-list tr").Filter(new() { HasText = "ui pets" })).ToHaveCountAsync(1);
        // A zip that is not a zip, on the dataset form.
        await page.Locator("#dataset-file").SetInputFilesAsync(new FilePayload { Name = "x.zip", MimeType = "application/zip", Buffer = "hello"u8.ToArray() });
        await page.Locator("#dataset-form button[type=submit]").ClickAsync();
        await Expect(page.Locator("#dataset-form .inline-error")).ToContainTextAsync("HTTP 4");
        await ui.ScreenshotAsync("models-errors");
        ui.AssertNoConsoleErrors("status of 400", "status of 422");
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task NarrowScreen_EveryPageFitsWithoutHorizontalScrolling()
    {
        await using var ui = await app.OpenAsync(output, "#/explore", width: 390, height: 844);
        var page = ui.Page;
        await page.Locator("#explore-files").SetInputFilesAsync(Photo("coffee.png"));
        await Expect(page.Locator("article.card").First).ToHaveAttributeAsync("data-segmenter", "done", new() { Timeout = Slow });
        foreach (var hash in new[] { "#/explore", "#/train", "#/collections", "#/models" })
        {
            await page.EvaluateAsync($"() => location.hash = '{hash}'");
            await Expect(page.Locator("main > .page:not([hidden]) h1")).ToBeVisibleAsync();
            var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - document.documentElement.clientWidth");
            Assert.True(overflow <= 1, $"{hash} scrolls sideways by {overflow}px on a 390px screen");
            await ui.ScreenshotAsync("narrow-" + hash.Trim('#', '/'));
        }
        // Keyboard: the skip link is the first stop, then the navigation.
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator(".skip-link")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Tab");
        await Expect(page.Locator("nav a[data-page=explore]")).ToBeFocusedAsync();
        ui.AssertNoConsoleErrors();
    }
}
