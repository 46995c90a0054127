using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using BeitV2.Ml.Models;
using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Jobs;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// /health/ready runs ASP.NET Core health checks: default models (as before), a writable data directory,
/// and PostgreSQL / Redis when configured. A failing check is named in the 503 answer, in words without
/// server paths.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ReadinessChecksTests
{
    [Fact]
    public async Task DataDirectoryNotWritable_Ready503NamesTheCheck_WithoutTheServerPath()
    {
        using var host = new ApiHost();
        host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "classifier");
        using var client = host.CreateClient();
        var before = await client.GetAsync("/health/ready").JsonAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal("missing-models", before.Str("status"));   // only models missing: the old answer
        Assert.Contains(before.Items("checks"), c => c.Str("name") == "data-directory" && c.Str("status") == "healthy");

        // Running as root ignores file modes, so the data directory is replaced by a plain file.
        var data = host.DataDirectory;
        var away = data + ".away";
        Directory.Move(data, away);
        File.WriteAllText(data, "not a directory");
        try
        {
            using var response = await client.GetAsync("/health/ready");
            var text = await response.Content.ReadAsStringAsync();
            var json = await response.JsonAsync(HttpStatusCode.ServiceUnavailable);
            Assert.Equal("not-ready", json.Str("status"));
            var check = Assert.Single(json.Items("checks"), c => c.Str("name") == "data-directory");
            Assert.Equal("unhealthy", check.Str("status"));
            Assert.Contains("Storage:DataDirectory", check.Str("description"));
            Assert.DoesNotContain(data, text);
            Assert.DoesNotMatch(new Regex(@"\b(System|Microsoft)\.[A-Za-z.]+Exception\b"), text);
        }
        finally
        {
            File.Delete(data);
            Directory.Move(away, data);
        }
        using (var live = await client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }

    [Fact]
    public async Task PostgresUnreachable_CheckIsUnhealthy_AtOnce()
    {
        // A port nobody listens on: the connection is refused immediately (no timeout to wait out).
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var check = new PostgresHealthCheck(Options.Create(new JobsOptions
        {
            Storage = "postgres",
            ConnectionString = $"Host=127.0.0.1;Port={port};Username=beitv2;Password=secret-pw;Database=beitv2",
            ConnectTimeoutSeconds = 5,
        }), NullLogger<PostgresHealthCheck>.Instance);

        var result = await check.CheckHealthAsync(new HealthCheckContext
        {
            Registration = new HealthCheckRegistration("postgres", check, HealthStatus.Unhealthy, null),
        });

        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.Contains("Jobs:ConnectionString", result.Description);
        Assert.DoesNotContain("secret-pw", result.Description);
    }

    [Fact]
    public async Task PostgresAndRedisChecks_AreRegisteredOnlyWhenConfigured()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var json = await client.GetAsync("/health/ready").JsonAsync(HttpStatusCode.ServiceUnavailable);
        var names = json.Items("checks").Select(c => c.Str("name")).Order().ToArray();
        Assert.Equal(new[] { "data-directory", "models" }, names);
    }
}
