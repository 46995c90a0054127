using BeitV2.Web.Configuration;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Infrastructure;

/// <summary>The resolved data directory (created on start-up), with helpers for its sub-folders.</summary>
public sealed class DataDirectory
{
    public DataDirectory(IOptions<StorageOptions> options, IHostEnvironment env)
    {
        var configured = options.Value.DataDirectory;
        Root = Path.GetFullPath(Path.IsPathRooted(configured) ? configured : Path.Combine(env.ContentRootPath, configured));
        Directory.CreateDirectory(Root);
        ClientText.DataRoot = Root;   // client-readable text shows paths relative to it
    }

    public string Root { get; }

    public string Sub(string name)
    {
        var path = Path.Combine(Root, name);
        Directory.CreateDirectory(path);
        return path;
    }
}
