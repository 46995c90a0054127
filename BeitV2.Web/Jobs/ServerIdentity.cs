using Microsoft.Extensions.Options;

namespace BeitV2.Web.Jobs;

/// <summary>
/// This process's name among the servers sharing the job queue: <c>Jobs:ServerName</c> (default "server")
/// and a random suffix. Job records, metrics and log lines show it to clients, so it carries no host name
/// or process id; the server log says once which host and process it is.
/// </summary>
public sealed class ServerIdentity
{
    public ServerIdentity(IOptions<JobsOptions> options, ILogger<ServerIdentity> logger)
    {
        var configured = options.Value.ServerName is { Length: > 0 } n ? n.Trim() : "server";
        Name = $"{configured}-{Guid.NewGuid().ToString("N")[..6]}";
        logger.LogInformation("This server is {Name} in job records (host {Host}, process {Pid})", Name, Environment.MachineName, Environment.ProcessId);
    }

    public string Name { get; }
}
