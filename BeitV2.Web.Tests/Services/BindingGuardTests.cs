using System.Net;
using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.Configuration;
using Xunit.Abstractions;

namespace BeitV2.Web.Tests.Services;

/// <summary>
/// Secure default: the real app, as its own process, refuses to listen on a public address without an
/// API key (saying how to set one), starts with a key, and starts with a warning when
/// Security:AllowAnonymous=true says so on purpose. Loopback needs nothing.
/// </summary>
public sealed class BindingGuardTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task PublicAddressWithoutAKey_RefusesToStart_SayingHowToSetOne()
    {
        using var data = new TempDirectory();
        using var app = new AppProcess("public, no key", Settings(data.Path), listenHost: "0.0.0.0");
        var code = await app.WaitForExitAsync(Timeout);
        output.WriteLine(app.Output);
        Assert.Equal(BindingGuard.RefusedExitCode, code);
        Assert.Contains("Refusing to start", app.Output);
        Assert.Contains($"http://0.0.0.0:{app.Port}", app.Output);
        Assert.Contains("Security__ApiKey=<key>", app.Output);
        Assert.Contains("Security:AllowAnonymous=true", app.Output);
        Assert.DoesNotContain("Now listening", app.Output);
    }

    [Fact]
    public async Task PublicAddressWithAllowAnonymous_Starts_WithAWarning()
    {
        using var data = new TempDirectory();
        using var app = new AppProcess("public, anonymous", Settings(data.Path, ("Security:AllowAnonymous", "true")), listenHost: "0.0.0.0");
        await app.WaitUntilLiveAsync(Timeout);
        using var models = await app.Client.GetAsync("/api/v1/models");
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.Contains("WITHOUT an API key", app.Output);
    }

    [Fact]
    public async Task PublicAddressWithAKey_Starts_AndAsksForIt()
    {
        using var data = new TempDirectory();
        using var app = new AppProcess("public, key", Settings(data.Path, ("Security:ApiKey", "k3y")), listenHost: "0.0.0.0");
        await app.WaitUntilLiveAsync(Timeout);
        using (var none = await app.Client.GetAsync("/api/v1/models")) Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/models") { Headers = { { "X-Api-Key", "k3y" } } };
        using var keyed = await app.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, keyed.StatusCode);
        Assert.DoesNotContain("WITHOUT an API key", app.Output);
        Assert.DoesNotContain("Refusing", app.Output);
    }

    [Theory]
    [InlineData("http://localhost:5000", true)]
    [InlineData("http://LOCALHOST:5000", true)]
    [InlineData("http://127.0.0.1:8080", true)]
    [InlineData("http://127.10.0.1:8080", true)]
    [InlineData("https://[::1]:8443", true)]
    [InlineData("http://unix:/run/beitv2.sock", true)]
    [InlineData("http://+:80", false)]
    [InlineData("http://*:8080", false)]
    [InlineData("http://0.0.0.0:8080", false)]
    [InlineData("http://[::]:8080", false)]
    [InlineData("http://192.168.1.20:8080", false)]
    [InlineData("http://beitv2.example.org:8080", false)]
    [InlineData("http://localhost.example.org", false)]
    [InlineData("not a url", false)]
    public void IsLoopback(string url, bool loopback) => Assert.Equal(loopback, BindingGuard.IsLoopback(url));

    [Theory]
    [InlineData(new string[0], "http://localhost:5000")]
    [InlineData(new[] { "urls", "http://127.0.0.1:1;http://0.0.0.0:2" }, "http://127.0.0.1:1|http://0.0.0.0:2")]
    [InlineData(new[] { "HTTP_PORTS", "8080;8081" }, "http://*:8080|http://*:8081")]
    [InlineData(new[] { "urls", "http://localhost:1", "http_ports", "8080" }, "http://localhost:1")] // urls win over ports, as in Kestrel
    [InlineData(new[] { "Kestrel:Endpoints:Web:Url", "http://0.0.0.0:9", "urls", "http://localhost:1" }, "http://0.0.0.0:9|http://localhost:1")]
    [InlineData(new[] { "https_ports", "443" }, "https://*:443")]
    public void ConfiguredAddresses(string[] settings, string expected)
    {
        var pairs = new Dictionary<string, string?>();
        for (var i = 0; i < settings.Length; i += 2) pairs[settings[i]] = settings[i + 1];
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(pairs).Build();
        Assert.Equal(expected, string.Join("|", BindingGuard.ConfiguredAddresses(configuration)));
    }

    private static Dictionary<string, string> Settings(string data, params (string Key, string Value)[] more) => AppProcess.BareSettings(data, more);
}
