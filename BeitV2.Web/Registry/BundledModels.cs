using System.Text.Json;
using BeitV2.Web.Errors;

namespace BeitV2.Web.Registry;

/// <summary>
/// What the bundle of default models says about itself (<c>GET /api/v1/bundled-models</c>): the model of each kind it
/// ships (its <c>defaults.json</c>) and how they were trained: <c>results.md</c> (the results table) and
/// <c>results.json</c> (every pipeline stage's metrics, steps and seconds), as the pipeline command exported them.
/// </summary>
/// <param name="Defaults">kind → id of the shipped model of that kind (the ids a fresh data directory is seeded with).</param>
/// <param name="Report">the results table as Markdown (the README's table).</param>
/// <param name="Results">the pipeline run's state: preset, seed, version and, per stage, the model it registered, metrics, steps and seconds.</param>
public sealed record BundledModelsReport(IReadOnlyDictionary<string, string> Defaults, string Report, JsonElement Results);

public static class BundledModels
{
    public const string DefaultsFile = "defaults.json", ResultsFile = "results.json", ReportFile = "results.md";

    /// <summary>Reads the report of the bundle in <paramref name="bundle"/>; 404 when it has none (a deployment without the bundle).</summary>
    public static BundledModelsReport Read(string bundle)
    {
        string Text(string file) => File.Exists(Path.Combine(bundle, file))
            ? File.ReadAllText(Path.Combine(bundle, file))
            // No path in the message: where the app is installed is no business of a client.
            : throw new NotFoundException($"This server has no bundled models' results ({file} is missing from its Models:BundledDirectory). " +
                                          "The results of the shipped models are in the repository's BeitV2.Web/DefaultModels/results.md.");
        var defaults = JsonSerializer.Deserialize<Dictionary<string, string>>(Text(DefaultsFile)) ?? [];
        using var results = JsonDocument.Parse(Text(ResultsFile));
        return new BundledModelsReport(defaults, Text(ReportFile), results.RootElement.Clone());
    }
}
