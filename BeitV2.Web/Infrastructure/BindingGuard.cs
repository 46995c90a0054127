using System.Net;
using BeitV2.Web.Configuration;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// Secure default: a server reachable from other machines (any configured address that is not
/// loopback) needs an API key. Without one it refuses to start, before binding anything, with a
/// message that says how to set a key -- unless <c>Security:AllowAnonymous=true</c> says so on
/// purpose, which is logged as a warning at every start. Loopback-only servers (the default
/// <c>http://localhost:5000</c>, the tests) start without a key.
/// </summary>
public static class BindingGuard
{
    /// <summary>The process exit code of a refusal (EX_CONFIG of sysexits.h: a configuration error).</summary>
    public const int RefusedExitCode = 78;

    /// <summary>
    /// True when the app must not start; the reason is logged and the app disposed (which flushes
    /// the log). Call between <c>Build()</c> and <c>Run()</c>.
    /// </summary>
    public static bool Refuses(WebApplication app)
    {
        var security = app.Services.GetRequiredService<IOptions<SecurityOptions>>().Value;
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("BeitV2.Web.Security");
        if (security.RequireKeyForInference is { } old)
            logger.LogWarning("Security:RequireKeyForInference={Old} is deprecated: inference needs the API key unless Security:AnonymousInference=true{Alias}.",
                old, old ? "" : " (read as Security:AnonymousInference=true)");

        // The in-memory test server listens on nothing (it has no addresses feature): nothing to guard.
        if (app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>() is null) return false;
        var exposed = ConfiguredAddresses(app.Configuration).Where(a => !IsLoopback(a)).ToList();
        if (exposed.Count == 0 || security.ConfiguredKeys().Count > 0) return false;

        var where = string.Join(", ", exposed);
        if (security.AllowAnonymous)
        {
            logger.LogWarning("Security:AllowAnonymous=true: listening on {Addresses} WITHOUT an API key. Everyone who reaches the port can read, " +
                              "train, import and delete models. Set Security:ApiKey unless this network is trusted.", where);
            return false;
        }
        logger.LogCritical(
            "Refusing to start: the server would listen on {Addresses}, which other machines can reach, and no API key is set. " +
            "Set one, e.g. a key from 'openssl rand -hex 32': the environment variable Security__ApiKey=<key>, the command-line option " +
            "--Security:ApiKey=<key>, or \"Security\": {{ \"ApiKey\": \"<key>\" }} in appsettings.json (several keys: Security__ApiKeys__0, __1, ...). " +
            "Clients send it as X-Api-Key or Authorization: Bearer <key>. To serve without a key on purpose (a trusted network only), " +
            "set Security:AllowAnonymous=true. To listen on this machine only, use --urls http://127.0.0.1:5000.", where);
        ((IDisposable)app).Dispose();
        return true;
    }

    /// <summary>
    /// Every address the configuration makes Kestrel listen on: <c>Kestrel:Endpoints:*:Url</c>, and
    /// <c>urls</c> (ASPNETCORE_URLS, DOTNET_URLS, --urls) or else <c>http_ports</c>/<c>https_ports</c>
    /// (ASPNETCORE_HTTP_PORTS: all interfaces), or else Kestrel's default <c>http://localhost:5000</c>.
    /// Kestrel lets endpoints override urls; taking both errs on the side of asking for a key.
    /// </summary>
    public static IReadOnlyList<string> ConfiguredAddresses(IConfiguration configuration)
    {
        var addresses = configuration.GetSection("Kestrel:Endpoints").GetChildren()
            .Select(e => e["Url"]).Where(u => !string.IsNullOrWhiteSpace(u)).Select(u => u!.Trim()).ToList();
        var urls = Split(configuration["urls"]);
        if (urls.Count > 0) addresses.AddRange(urls);
        else
        {
            addresses.AddRange(Split(configuration["http_ports"]).Select(p => $"http://*:{p}"));
            addresses.AddRange(Split(configuration["https_ports"]).Select(p => $"https://*:{p}"));
        }
        if (addresses.Count == 0) addresses.Add("http://localhost:5000");
        return addresses;
    }

    /// <summary>
    /// Loopback: <c>localhost</c>, a loopback IP, a Unix socket or named pipe. Everything else is
    /// reachable: <c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>[::]</c>, another IP, or a host name (Kestrel
    /// binds a host name other than localhost to all interfaces).
    /// </summary>
    public static bool IsLoopback(string url)
    {
        BindingAddress address;
        try { address = BindingAddress.Parse(url); }
        catch (FormatException) { return false; }
        if (address.IsUnixPipe || address.IsNamedPipe) return true;
        var host = address.Host.Trim('[', ']');
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip);
    }

    private static List<string> Split(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : value.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
}
