using System.Globalization;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Jobs;
using JobClient = BeitV2.Web.Tests.Jobs.Jobs;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// The pages as a newcomer sees them on a fresh clone, with the shipped models: the Train form's first choice and
/// what it says to expect, the shipped models' source (the results table, not a job this server never ran), and the
/// page of a job that is not here. The shipped ids are read from the registry, never written here.
/// </summary>
[Collection(ShippedUiCollection.Name)]
public sealed class ShippedModelsBrowserTests(ShippedUiApp app, ITestOutputHelper output)
{
    private static string Bundle => Path.Combine(AppContext.BaseDirectory, "DefaultModels");

    private string DefaultId(string kind) => app.Host.Registry.DefaultId(kind) ?? throw new InvalidOperationException($"no shipped {kind}");

    /// <summary>The shipped classifier's accuracy as results.json has it, as the page writes it (one decimal).</summary>
    private static string ShippedClassifierAccuracy()
    {
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(Bundle, "results.json")));
        var accuracy = results.RootElement.GetProperty("stages").GetProperty("classifier").GetProperty("metrics").GetProperty("accuracy").GetDouble();
        return (100 * accuracy).ToString("F1", CultureInfo.InvariantCulture) + " %";
    }

    [Fact]
    public async Task Train_FirstChoiceIsTheShippedMimModel_SaysWhatToExpect_AndItsDefaultsTrain()
    {
        var mim = DefaultId("pretrain");
        await using var ui = await app.OpenAsync(output, "#/train");
        var page = ui.Page;
        await Expect(page.Locator("#job-type")).ToHaveValueAsync("finetune");
        await Expect(page.Locator("#job-dataset")).ToHaveValueAsync("fashion-mnist");
        var first = page.Locator("#job-base option").First;
        await Expect(first).ToHaveAttributeAsync("value", mim);
        await Expect(first).ToContainTextAsync("Fine-tune the shipped MIM model");
        await Expect(page.Locator("#job-base")).ToHaveValueAsync(mim);
        await Expect(page.Locator("#job-preset")).ToBeHiddenAsync(); // a base model: no from-scratch size

        // What to expect, next to the form: the measured figure, and the shipped classifier's from the bundle's results.
        var expectation = page.Locator("#train-expectation");
        await Expect(expectation).ToContainTextAsync("Expect about 74 % validation accuracy after about 3 minutes on a CPU");
        await Expect(expectation).ToContainTextAsync("approximate");
        await Expect(expectation).ToContainTextAsync("the shipped classifier, the same recipe on all 60,000 training images, measured " + ShippedClassifierAccuracy());
        await Expect(expectation).ToHaveAttributeAsync("data-defaults", "true");
        await ui.ScreenshotAsync("shipped-train-form");
        // Changed settings: the figure no longer applies, and the page says so; "Reset to defaults" brings it back.
        await page.Locator("#job-epochs").FillAsync("1");
        await Expect(expectation).ToHaveAttributeAsync("data-defaults", "false");
        await Expect(expectation).ToContainTextAsync("Your settings differ from these defaults");
        await page.Locator("#job-base").SelectOptionAsync(new SelectOptionValue { Value = "" });
        await page.GetByRole(AriaRole.Button, new() { Name = "Reset to defaults" }).ClickAsync();
        await Expect(page.Locator("#job-base")).ToHaveValueAsync(mim);
        await Expect(page.Locator("#job-epochs")).ToHaveValueAsync("3");
        await Expect(expectation).ToHaveAttributeAsync("data-defaults", "true");

        // The defaults as they stand: the service accepts them, and the job trains from the shipped MIM model.
        var defaults = JsonDocument.Parse(await page.EvaluateAsync<string>("async () => JSON.stringify((await import('/js/train.js')).TYPES.finetune.defaults)")).RootElement;
        var firstReport = defaults.GetProperty("reportEverySteps").GetInt64();
        using var hold = new HeldStep(app.Host.DataDirectory, firstReport); // training it for minutes is not what this tests
        await BrowserTests.StartJobFromTheFormAsync(page);
        var jobId = page.Url[(page.Url.IndexOf("#/jobs/", StringComparison.Ordinal) + 7)..];
        using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var job = await JobClient.WaitForStepAsync(client, jobId, firstReport, TimeSpan.FromMilliseconds(BrowserTests.Slow));
        Assert.Equal("finetune", job.Str("type"));
        Assert.Equal("fashion-mnist", job.Str("dataset"));
        Assert.Equal(mim, job.Str("baseModel"));
        var config = job.GetProperty("config");
        foreach (var p in defaults.EnumerateObject())
            Assert.Equal(p.Value.GetDouble(), config.GetProperty(p.Name).GetDouble());
        await page.Locator("#job-cancel").ClickAsync();
        await Expect(page.Locator("#page-job")).ToHaveAttributeAsync("data-status", "cancelled", new() { Timeout = BrowserTests.Slow });
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task ModelsPage_AShippedModelsSource_LinksToHowTheShippedModelsWereTrained()
    {
        await using var ui = await app.OpenAsync(output, "#/models");
        var page = ui.Page;
        foreach (var kind in new[] { "tokenizer", "pretrain", "classifier", "segmenter" })
        {
            var row = page.Locator($"tr[data-model-id='{DefaultId(kind)}']");
            await Expect(row.Locator("a.shipped-source")).ToHaveAttributeAsync("href", "#/models?section=shipped");
            await Expect(row.Locator("a[href^='#/jobs/']")).ToHaveCountAsync(0); // no link to a job this server never ran
        }
        await page.Locator($"tr[data-model-id='{DefaultId("classifier")}'] a.shipped-source").ClickAsync();
        var section = page.Locator("#shipped-results");
        await Expect(section).ToBeFocusedAsync();
        await Expect(section.Locator("h2")).ToHaveTextAsync("How the shipped models were trained");
        // The table is results.md's: every row, and the served classifier's accuracy.
        var rows = File.ReadAllLines(Path.Combine(Bundle, "results.md")).Count(l => l.StartsWith('|')) - 2;
        await Expect(section.Locator("table.results-table tbody tr")).ToHaveCountAsync(rows);
        await Expect(section.Locator("tbody tr").Filter(new() { HasText = "served classifier: fine-tune" })).ToContainTextAsync(ShippedClassifierAccuracy());
        await ui.ScreenshotAsync("shipped-results");
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task JobPage_ForAJobThisServerDoesNotHave_SaysSo_AndLinksBack()
    {
        // The job a shipped model's lineage names: the pipeline run that trained it, on another machine.
        var jobId = app.Host.Registry.Get(DefaultId("classifier")).Lineage?.JobId ?? throw new InvalidOperationException("no lineage job");
        await using var ui = await app.OpenAsync(output, "#/jobs/" + jobId);
        var page = ui.Page;
        await Expect(page.Locator("#page-job")).ToHaveAttributeAsync("data-status", "not-found");
        await Expect(page.Locator("#job-title")).ToHaveTextAsync($"No job '{jobId}' on this server");
        await Expect(page.Locator("#page-job")).Not.ToContainTextAsync("Waiting for the first report");
        await Expect(page.Locator("#page-job progress")).ToHaveCountAsync(0);
        await Expect(page.Locator("#job-not-found a[href='#/train']")).ToBeVisibleAsync();
        await ui.ScreenshotAsync("job-not-found");
        await page.Locator("#job-not-found a[href='#/models?section=shipped']").ClickAsync();
        await Expect(page.Locator("#shipped-results")).ToBeFocusedAsync();
        ui.AssertNoConsoleErrors("status of 404");
        app.Host.AssertNoServerErrors();
    }
}
