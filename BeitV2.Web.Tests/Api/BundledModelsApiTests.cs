using System.Text.Json;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// <c>GET /api/v1/bundled-models</c>: what the shipped models are and how they were trained (the bundle's
/// defaults.json, results.md and results.json), the page the UI links a shipped model's source to.
/// </summary>
public sealed class BundledModelsApiTests
{
    private static string Bundle => Path.Combine(AppContext.BaseDirectory, "DefaultModels");

    [Fact]
    public async Task BundledModels_AnswersTheBundlesDefaultsResultsTableAndStages()
    {
        using var host = new ApiHost(); // no models seeded: the bundle's report does not depend on the registry
        using var client = host.CreateClient();
        var json = await client.GetAsync("/api/v1/bundled-models").JsonAsync();

        var defaults = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Path.Combine(Bundle, "defaults.json")))!;
        Assert.Equal(defaults, json.GetProperty("defaults").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!));
        Assert.Equal(File.ReadAllText(Path.Combine(Bundle, "results.md")), json.Str("report"));
        Assert.Contains("| stage | measure | value | minutes |", json.Str("report"));
        // The stages name the shipped models: the classifier stage registered the bundle's default classifier.
        var stages = json.GetProperty("results").GetProperty("stages");
        Assert.Equal(defaults["classifier"], stages.GetProperty("classifier").Str("model"));
        Assert.InRange(stages.GetProperty("classifier").GetProperty("metrics").GetProperty("accuracy").GetDouble(), 0.5, 1);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task BundledModels_WithoutABundle_Is404SayingWhereTheResultsAre_WithoutAServerPath()
    {
        using var empty = new TempDirectory();
        using var host = new ApiHost(new Dictionary<string, string?> { ["Models:BundledDirectory"] = empty.Path });
        using var client = host.CreateClient();
        var detail = await client.GetAsync("/api/v1/bundled-models").ProblemAsync(404);
        Assert.Contains("no bundled models' results", detail);
        Assert.Contains("DefaultModels/results.md", detail);
        Assert.DoesNotContain(empty.Path, detail);
        Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), detail);
        host.AssertNoServerErrors();
    }
}
