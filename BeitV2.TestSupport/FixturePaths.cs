namespace BeitV2.TestSupport;

/// <summary>
/// Where the shared reference fixtures are: <c>BEITV2_FIXTURES</c> names the folder of reference
/// descriptors (default <c>../shared/fixtures/reference</c> next to the repository); the photos are
/// in <c>../images</c> beside it.
/// </summary>
public static class FixturePaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string ReferenceDir { get; } = Path.GetFullPath(
        Environment.GetEnvironmentVariable("BEITV2_FIXTURES") is { Length: > 0 } env
            ? env
            : Path.Combine(RepoRoot, "..", "shared", "fixtures", "reference"));

    public static string ImagesDir { get; } = Path.GetFullPath(Path.Combine(ReferenceDir, "..", "images"));

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BeitV2.Web.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Cannot find the repository root (BeitV2.Web.sln) above " + AppContext.BaseDirectory);
    }
}
