using System.Collections.Concurrent;
using BeitV2.Web.Registry;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// The real service (Program, all middleware, routes and singletons) on an in-memory test server,
/// with its own fresh data directory and the given configuration. It runs in the Production
/// environment, as deployed. Error-level log entries are recorded: the contract says a 5xx is
/// always a bug, so tests can check none happened (warnings are kept apart, for tests of what is logged).
/// </summary>
public sealed class ApiHost : WebApplicationFactory<Program>
{
    private readonly TempDirectory data = new();
    private readonly Dictionary<string, string?> settings;
    private readonly ErrorLog errors = new();
    private readonly Action<IServiceCollection>? services;

    /// <param name="settings">Configuration overrides ("Section:Key" = value) on top of the test defaults.</param>
    /// <param name="services">Registrations on top of the service's own (test doubles of its seams).</param>
    public ApiHost(IReadOnlyDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        this.services = services;
        this.settings = new Dictionary<string, string?>
        {
            ["Storage:DataDirectory"] = data.Path,
            ["Ml:Device"] = "cpu",
            ["Ml:Threads"] = "1",
            ["Inference:MaxWaitMs"] = "5",
            ["Inference:MaxLoadedModels"] = "8",
            ["Models:SeedDefaults"] = "false", // tests seed what they need; DefaultModelsTests turns this on
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) this.settings[k] = v;
    }

    /// <summary>The service's data directory (deleted with the host).</summary>
    public string DataDirectory => data.Path;

    public ModelRegistry Registry => Services.GetRequiredService<ModelRegistry>();

    /// <summary>Error-level log entries written by the service so far.</summary>
    public IReadOnlyCollection<string> ErrorLogs => errors.Entries;

    /// <summary>Warning-level log entries written by the service so far.</summary>
    public IReadOnlyCollection<string> WarningLogs => errors.Warnings;

    /// <summary>Registers <paramref name="model"/> (and disposes it) as the registry does for imports and jobs.</summary>
    public ModelInfo Seed(nn.Module model, string name, IReadOnlyList<string>? labels = null, bool? makeDefault = null)
    {
        using (model) return Registry.Add(model, name, "test:seed", labels, makeDefault: makeDefault);
    }

    /// <summary>Every file under the data directory (relative path and size): to check that failures leave nothing behind.</summary>
    public IReadOnlyList<string> DataFiles() => Directory.Exists(data.Path)
        ? Directory.EnumerateFileSystemEntries(data.Path, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(data.Path, p) + (File.Exists(p) ? $" ({new FileInfo(p).Length} bytes)" : "/"))
            .Order(StringComparer.Ordinal).ToList()
        : [];

    /// <summary>Files under <c>{data}/tmp</c> (imports stage uploads there).</summary>
    public IReadOnlyList<string> TempFiles()
    {
        var tmp = Path.Combine(data.Path, "tmp");
        return Directory.Exists(tmp) ? Directory.EnumerateFileSystemEntries(tmp, "*", SearchOption.AllDirectories).ToList() : [];
    }

    public void AssertNoServerErrors() =>
        Assert.True(errors.Entries.Count == 0, "The service logged errors:\n" + string.Join("\n", errors.Entries));

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        foreach (var (k, v) in settings) builder.UseSetting(k, v);
        builder.ConfigureLogging(logging =>
        {
            logging.ClearProviders();
            logging.AddProvider(errors);
        });
        if (services is not null) builder.ConfigureServices(services);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) data.Dispose();
    }

    private sealed class ErrorLog : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> entries = new();
        private readonly ConcurrentQueue<string> warnings = new();

        public IReadOnlyCollection<string> Entries => entries.ToArray();
        public IReadOnlyCollection<string> Warnings => warnings.ToArray();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose() { }

        private sealed class Logger(ErrorLog owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel)) return;
                (logLevel >= LogLevel.Error ? owner.entries : owner.warnings).Enqueue($"{category}: {formatter(state, exception)} {exception}");
            }
        }
    }
}
