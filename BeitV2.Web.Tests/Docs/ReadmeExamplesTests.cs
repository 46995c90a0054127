using System.Diagnostics;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace BeitV2.Web.Tests.Docs;

/// <summary>A real Kestrel host never runs next to another one (Hangfire keeps process-wide static state).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ReadmeServerCollection
{
    public const string Name = "readme-server";
}

/// <summary>
/// README.md's curl examples against the service as a fresh clone runs it (the shipped models, a real port, the
/// real curl): a README that names a file the repository lacks, a route that moved or an answer that changed fails
/// here.
/// </summary>
[Collection(ReadmeServerCollection.Name)]
public sealed class ReadmeExamplesTests(ITestOutputHelper output)
{
    private static readonly string[] ImageExtensions = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"];

    private static ReadmeCurlExamples Readme() =>
        ReadmeCurlExamples.Parse(File.ReadAllText(Path.Combine(FixturePaths.RepoRoot, "README.md")));

    [Fact]
    public void Readme_RunsAnExampleOfEveryInferenceRoute()
    {
        var run = Readme().Runnable.Select(e => $"{e.Method} {e.Path}").ToHashSet();
        foreach (var route in new[] { "/api/v1/classify", "/api/v1/tokens", "/api/v1/embeddings", "/api/v1/segment", "/api/v1/models" })
            Assert.Contains(run, r => r.EndsWith(" " + route, StringComparison.Ordinal));
    }

    [Fact]
    public void EveryImageTheExamplesSend_IsInTheRepository()
    {
        var missing = Readme().Examples
            .SelectMany(e => e.Files.Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).Select(f => (e, f)))
            .Where(x => !File.Exists(Path.Combine(FixturePaths.RepoRoot, x.f)))
            .Select(x => $"{x.e}: '{x.f}' is not in the repository")
            .ToList();
        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [Fact]
    public void EveryExample_NamesARouteTheServiceMaps()
    {
        using var host = new ApiHost();
        var routes = host.Services.GetRequiredService<IEnumerable<EndpointDataSource>>()
            .SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is not null)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
                .Select(m => (Method: m, Matcher: new TemplateMatcher(TemplateParser.Parse(e.RoutePattern.RawText!.TrimStart('/')), new()))))
            .ToList();
        var examples = Readme().Examples;
        Assert.True(examples.Count >= 20, $"Only {examples.Count} curl examples found in README.md: is the parser still reading its bash blocks?");
        var unmapped = examples
            .Where(e => !routes.Any(r => r.Method == e.Method && r.Matcher.TryMatch(e.Path, new())))
            .Select(e => $"{e}: no {e.Method} {e.Path} route")
            .ToList();
        Assert.True(unmapped.Count == 0, string.Join("\n", unmapped));
    }

    [Fact]
    public async Task RunnableExamples_AnswerAsTheReadmeSays()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Models:SeedDefaults"] = "true", ["Ml:Threads"] = "2" });
        host.UseKestrel(0);
        host.StartServer();
        var baseUrl = host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()
            .Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1").TrimEnd('/');
        using var work = new TempDirectory();
        // The examples name files relative to the repository root; what they write (-o) lands in the scratch folder.
        foreach (var entry in Directory.EnumerateFileSystemEntries(FixturePaths.RepoRoot))
            if (!Path.GetFileName(entry).StartsWith('.'))
                File.CreateSymbolicLink(Path.Combine(work.Path, Path.GetFileName(entry)), entry);

        var runnable = Readme().Runnable.ToList();
        Assert.NotEmpty(runnable);
        var failures = new List<string>();
        foreach (var example in runnable)
        {
            var (status, body) = await RunAsync(example.AgainstServer(baseUrl), work.Path);
            output.WriteLine($"{status} ← {example}");
            var ok = example.ExpectedStatus is { } expected ? status == expected : status is >= 200 and < 300;
            if (!ok)
            {
                failures.Add($"{example}: HTTP {status}, README promises {example.ExpectedStatus?.ToString() ?? "2xx"}\n  {Shorten(body)}");
                continue;
            }
            if (example.Output is { } file && Path.GetExtension(file) == ".png")
            {
                var bytes = await File.ReadAllBytesAsync(Path.Combine(work.Path, file));
                if (bytes.Length < 8 || bytes[0] != 0x89 || bytes[1] != (byte)'P' || bytes[2] != (byte)'N' || bytes[3] != (byte)'G')
                    failures.Add($"{example}: '{file}' is not a PNG");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        host.AssertNoServerErrors();
    }

    /// <summary>Runs one command in bash with curl reporting the status after the body; (status, body).</summary>
    private static async Task<(int Status, string Body)> RunAsync(string command, string directory)
    {
        const string Marker = "@@readme-status ";
        var script = $"curl() {{ command curl -sS --max-time 120 -w '\\n{Marker}%{{http_code}}\\n' \"$@\"; }}\n{command}\n";
        var start = new ProcessStartInfo("bash", ["-c", script])
        {
            WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var text = await stdout;
        var at = text.LastIndexOf(Marker, StringComparison.Ordinal);
        var status = at >= 0 && int.TryParse(text[(at + Marker.Length)..].Trim(), out var s) ? s : 0;
        return (status, (at >= 0 ? text[..at] : text) + await stderr);
    }

    private static string Shorten(string text) => text.Length <= 400 ? text.Trim() : text[..400] + "…";
}
