namespace BeitV2.Web.Tests;

/// <summary>
/// Locates the shared reference fixtures: <c>BEITV2_FIXTURES</c> (the <c>reference</c> folder) if
/// set, else <c>../shared/fixtures/reference</c> next to the repository root (the folder holding
/// BeitV2.Web.sln). Images live in the sibling <c>images</c> folder.
/// </summary>
public static class FixturePaths
{
    private static readonly Lazy<string> Reference = new(() =>
    {
        var fromEnv = Environment.GetEnvironmentVariable("BEITV2_FIXTURES");
        if (!string.IsNullOrWhiteSpace(fromEnv)) return Path.GetFullPath(fromEnv);

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BeitV2.Web.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures", "reference"));

        throw new DirectoryNotFoundException(
            $"BeitV2.Web.sln not found above {AppContext.BaseDirectory}; set BEITV2_FIXTURES to the fixtures' reference folder.");
    });

    /// <summary>The fixtures' <c>reference</c> folder (JSON, safetensors).</summary>
    public static string ReferenceDir => Reference.Value;

    /// <summary>The fixtures' <c>images</c> folder.</summary>
    public static string ImagesDir => Path.GetFullPath(Path.Combine(ReferenceDir, "..", "images"));
}
