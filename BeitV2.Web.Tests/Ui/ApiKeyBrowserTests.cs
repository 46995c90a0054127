using System.Collections.Concurrent;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace BeitV2.Web.Tests.Ui;

/// <summary>
/// A service with an API key: the UI (served without one) leads a user without the key to the
/// Settings field with a clear message; with the key, every request and the SignalR hub (WebSockets,
/// key in the access_token query) work.
/// </summary>
[Collection(KeyedUiCollection.Name)]
public sealed class ApiKeyBrowserTests(KeyedUiApp app, ITestOutputHelper output)
{
    [Fact]
    public async Task WithoutTheKey_SettingsAsksForIt_AfterSaving_PagesAndHubWork()
    {
        await using var ui = await app.OpenAsync(output, "#/models");
        var page = ui.Page;
        var sockets = Sockets(page);

        await Expect(page.Locator("#settings")).ToHaveAttributeAsync("open", "");
        await Expect(page.Locator("#api-key-needed")).ToBeVisibleAsync();
        await Expect(page.Locator("#api-key")).ToBeFocusedAsync();
        await Expect(page.Locator("#alerts")).ToContainTextAsync("needs an API key");
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "unauthorized");
        await ui.ScreenshotAsync("api-key-needed");

        await page.Locator("#api-key").FillAsync(KeyedUiApp.Key);
        await page.Locator("#settings-form button[type=submit]").ClickAsync();
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "connected");
        await Expect(page.Locator("#device")).ToContainTextAsync("device:");
        await Expect(page.Locator("#models-list")).ToContainTextAsync("No models are registered yet");
        await Expect(page.Locator("#api-key-needed")).ToBeHiddenAsync();
        Assert.Contains(sockets, url => url.Contains("/hubs/training") && url.Contains("access_token=" + KeyedUiApp.Key));
        ui.AssertNoConsoleErrors("401");
        app.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task WithTheKeySaved_EverythingLoads_WithoutA401()
    {
        await using var ui = await app.OpenAsync(output, "#/train", initScript: $"localStorage.setItem('beitv2.apiKey', '{KeyedUiApp.Key}');");
        var page = ui.Page;
        await Expect(page.Locator("#live-state")).ToHaveAttributeAsync("data-state", "connected");
        await Expect(page.Locator("#device")).ToContainTextAsync("device:");
        await Expect(page.Locator("#job-type")).ToBeVisibleAsync();
        await Expect(page.Locator("#settings")).Not.ToHaveAttributeAsync("open", "");
        await Expect(page.Locator("#api-key")).ToHaveValueAsync(KeyedUiApp.Key);
        ui.AssertNoConsoleErrors();
        app.Host.AssertNoServerErrors();
    }

    /// <summary>The URLs of the WebSockets the page opens.</summary>
    private static ConcurrentQueue<string> Sockets(IPage page)
    {
        var urls = new ConcurrentQueue<string>();
        page.WebSocket += (_, ws) => urls.Enqueue(ws.Url);
        return urls;
    }
}
