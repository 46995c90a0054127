namespace BeitV2.Web.Tests;

/// <summary>
/// Locates the shared read-only fixtures: <c>BEITV2_FIXTURES</c> (the <c>reference</c> folder) if set,
/// else <c>../shared/fixtures/reference</c> next to the repository root (the folder holding BeitV2.Web.sln).
/// </summary>
public static class FixturePaths
{
    private static readonly Lazy<string> Reference = new(() =>
    {
        var env = Environment.GetEnvironmentVariable("BEITV2_FIXTURES");
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BeitV2.Web.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures", "reference"));
        throw new DirectoryNotFoundException(
            "Cannot find the fixtures: set BEITV2_FIXTURES or run from inside the repository (BeitV2.Web.sln not found).");
    });

    /// <summary>The <c>reference</c> fixture folder (.pth / .safetensors / .json files).</summary>
    public static string ReferenceDir => Reference.Value;

    /// <summary>The <c>images</c> folder next to <see cref="ReferenceDir"/>.</summary>
    public static string ImagesDir => Path.GetFullPath(Path.Combine(ReferenceDir, "..", "images"));
}
