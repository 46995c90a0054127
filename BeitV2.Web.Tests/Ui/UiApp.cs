using System.Collections.Concurrent;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Registry;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// Browser tests run one at a time (one Kestrel host with Hangfire, one browser) and never next to
/// another host (Hangfire keeps process-wide static state, e.g. GlobalConfiguration and JobStorage.Current).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class UiCollection : ICollectionFixture<UiApp>
{
    public const string Name = "ui";
}

/// <summary>The same, for a service with no models at all (a fresh clone).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EmptyUiCollection : ICollectionFixture<EmptyUiApp>
{
    public const string Name = "ui-empty";
}

/// <summary>The app with a tiny random model of every kind the Explore page uses (as the API tests seed them).</summary>
public sealed class UiApp : UiAppBase
{
    public static readonly string[] ClassifierLabels = { "cat", "dog", "bird" };
    public static readonly string[] SegmenterLabels = { "background", "sky", "road", "tree" };

    public ModelInfo Tokenizer { get; private set; } = null!;
    public ModelInfo Classifier { get; private set; } = null!;
    public ModelInfo OtherClassifier { get; private set; } = null!;
    public ModelInfo Segmenter { get; private set; } = null!;
    public ModelInfo Backbone { get; private set; } = null!;

    protected override void Seed(ApiHost host)
    {
        Classifier = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "micro classifier", ClassifierLabels);
        OtherClassifier = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "second classifier", ClassifierLabels, makeDefault: false);
        Backbone = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)), "micro backbone");
        Tokenizer = host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "micro tokenizer");
        Segmenter = host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4)), "micro segmenter", SegmenterLabels);
    }
}

/// <summary>The same, for a service with an API key (Security:ApiKey).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KeyedUiCollection : ICollectionFixture<KeyedUiApp>
{
    public const string Name = "ui-keyed";
}

/// <summary>A service with an API key and no models: the UI must ask for the key and use it everywhere, the hub included.</summary>
public sealed class KeyedUiApp : UiAppBase
{
    public const string Key = "browser-test-key";

    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Ml:Threads"] = "2", ["Security:ApiKey"] = Key };

    protected override void Seed(ApiHost host) { }
}

/// <summary>The app as a fresh clone starts it: no models registered.</summary>
public sealed class EmptyUiApp : UiAppBase
{
    protected override void Seed(ApiHost host) { }
}

/// <summary>The same, for a service seeded with the shipped models (BeitV2.Web/DefaultModels), as a fresh clone serves them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ShippedUiCollection : ICollectionFixture<ShippedUiApp>
{
    public const string Name = "ui-shipped";
}

/// <summary>The app as a fresh clone starts it: the bundled default models seeded into an empty data directory.</summary>
public sealed class ShippedUiApp : UiAppBase
{
    // No warm-up: these tests do not classify, and loading three models would only slow the machine.
    protected override IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Ml:Threads"] = "2", ["Models:SeedDefaults"] = "true", ["Inference:WarmUp"] = "false",
    };

    protected override void Seed(ApiHost host) { }
}

/// <summary>
/// The real app (Program, middleware, static files, hub) on a real Kestrel port, and Debian's
/// Chromium driven by Playwright (no browser download: <c>/usr/bin/chromium</c>, or <c>BEITV2_CHROMIUM</c>).
/// </summary>
public abstract class UiAppBase : IAsyncLifetime
{
    private static readonly string[] ChromiumFlags =
    [
        "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    ];

    public ApiHost Host { get; private set; } = null!;
    public string BaseUrl { get; private set; } = "";
    public IPlaywright Playwright { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Test artefacts: screenshots of every browser test (the path is printed in the test output).</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");

    protected abstract void Seed(ApiHost host);

    /// <summary>The host's configuration overrides.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?> { ["Ml:Threads"] = "2" };

    public async Task InitializeAsync()
    {
        var chromium = Environment.GetEnvironmentVariable("BEITV2_CHROMIUM") is { Length: > 0 } c ? c : "/usr/bin/chromium";
        if (!File.Exists(chromium))
            throw new InvalidOperationException($"Chromium is not installed at {chromium}: run 'apt-get install chromium' (.ci/run does) or set BEITV2_CHROMIUM.");
        Host = new ApiHost(new Dictionary<string, string?>(Settings) { [Jobs.HeldStep.Setting] = "true" });
        Host.UseKestrel(0);
        Host.StartServer();
        var addresses = Host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        BaseUrl = addresses.First().Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1").TrimEnd('/');
        Seed(Host);
        Directory.CreateDirectory(ScreenshotDirectory);
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium, Headless = true, Args = ChromiumFlags,
        });
    }

    /// <summary>A new browser tab (own context: own storage) that records console errors and uncaught exceptions.</summary>
    /// <param name="initScript">JavaScript run in the page before its own scripts (e.g. a recorder of DOM changes).</param>
    public async Task<UiPage> OpenAsync(ITestOutputHelper output, string hash = "#/explore", int width = 1280, int height = 900, string? initScript = null)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = BaseUrl, ViewportSize = new ViewportSize { Width = width, Height = height }, Locale = "en-US",
        });
        context.SetDefaultTimeout(60_000);
        if (initScript is not null) await context.AddInitScriptAsync(initScript);
        var page = await context.NewPageAsync();
        var ui = new UiPage(context, page, output);
        await page.GotoAsync("/" + hash);
        return ui;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.CloseAsync();
        Playwright?.Dispose();
        Host?.Dispose();
    }
}

/// <summary>One tab: the page, its console errors and uncaught exceptions, and screenshots.</summary>
public sealed class UiPage : IAsyncDisposable
{
    private readonly IBrowserContext context;
    private readonly ITestOutputHelper output;
    private readonly ConcurrentQueue<string> consoleErrors = new();
    private readonly ConcurrentQueue<string> pageErrors = new();

    public UiPage(IBrowserContext context, IPage page, ITestOutputHelper output)
    {
        this.context = context;
        this.output = output;
        Page = page;
        page.Console += (_, m) =>
        {
            if (m.Type == "error") consoleErrors.Enqueue($"{m.Text} ({m.Location})");
        };
        page.PageError += (_, e) => pageErrors.Enqueue(e);
    }

    public IPage Page { get; }

    /// <summary>No uncaught exception, and no console error except those matching <paramref name="expected"/> (e.g. the 400 of a rejected upload).</summary>
    public void AssertNoConsoleErrors(params string[] expected)
    {
        Assert.True(pageErrors.IsEmpty, "Uncaught errors in the page:\n" + string.Join("\n", pageErrors));
        var unexpected = consoleErrors.Where(e => !expected.Any(e.Contains)).ToList();
        Assert.True(unexpected.Count == 0, "Console errors:\n" + string.Join("\n", unexpected));
    }

    public IReadOnlyCollection<string> ConsoleErrors => consoleErrors.ToArray();

    /// <summary>Saves a full-page PNG under <see cref="UiAppBase.ScreenshotDirectory"/> and prints its path.</summary>
    public async Task<string> ScreenshotAsync(string name, bool fullPage = true)
    {
        var path = Path.Combine(UiAppBase.ScreenshotDirectory, name + ".png");
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = fullPage });
        output.WriteLine($"screenshot: {path}");
        return path;
    }

    /// <summary>
    /// The README's pictures: when <c>BEITV2_README_SCREENSHOTS</c> names a folder (e.g. docs/screenshots), the
    /// visible part of the page is saved there too (JPEG, ~100 KB; see README "Browser UI").
    /// </summary>
    public async Task ReadmeScreenshotAsync(string name)
    {
        if (Environment.GetEnvironmentVariable("BEITV2_README_SCREENSHOTS") is not { Length: > 0 } dir) return;
        Directory.CreateDirectory(dir);
        var path = Path.GetFullPath(Path.Combine(dir, name + ".jpg"));
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = false, Type = ScreenshotType.Jpeg, Quality = 80 });
        output.WriteLine($"README screenshot: {path}");
    }

    public async ValueTask DisposeAsync() => await context.CloseAsync();
}
