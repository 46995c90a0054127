namespace BeitV2.Web.Infrastructure;

/// <summary>
/// The browser UI is the repository's top-level <c>wwwroot/</c>: use it when running from source
/// (<c>dotnet run --project BeitV2.Web</c>), else the copy shipped next to the binaries.
/// </summary>
public static class WebRoot
{
    public static string Locate()
    {
        var source = Path.GetFullPath(Path.Combine(Directory.GetCurrentDirectory(), "..", "wwwroot"));
        if (Directory.Exists(source) && File.Exists(Path.Combine(source, "..", "BeitV2.Web.sln"))) return source;
        var fromRepoRoot = Path.GetFullPath(Path.Combine(Directory.GetCurrentDirectory(), "wwwroot"));
        if (Directory.Exists(fromRepoRoot) && File.Exists(Path.Combine(Directory.GetCurrentDirectory(), "BeitV2.Web.sln"))) return fromRepoRoot;
        return Path.Combine(AppContext.BaseDirectory, "wwwroot");
    }
}
