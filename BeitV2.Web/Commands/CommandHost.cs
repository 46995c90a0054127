using BeitV2.Web.Hosting;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Commands;

/// <summary>The services a command runs on: the server's own configuration sources, registry, datasets and jobs' services, without a web server.</summary>
public static class CommandHost
{
    /// <param name="settings">configuration on the command line (<c>--Ml:Device=cpu</c>).</param>
    /// <param name="data">the data folder (<c>Storage:DataDirectory</c>), or null for the configured one.</param>
    public static WebApplication Build(IReadOnlyList<string> settings, string? data)
    {
        var builder = WebApplication.CreateBuilder([
            "--Logging:LogLevel:Default=Warning", .. settings,
            .. data is null ? Array.Empty<string>() : [$"--Storage:DataDirectory={data}"]]);
        builder.AddServiceDefaults();
        builder.Services.AddModelRegistry();
        builder.Services.AddTrainingJobs(builder.Configuration);
        return builder.Build();
    }

    /// <summary>A token that Ctrl+C cancels (the process is not killed; the command stops between batches).</summary>
    public static CancellationTokenSource CancelOnCtrlC()
    {
        var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            if (!cts.IsCancellationRequested) cts.Cancel();
        };
        return cts;
    }
}
