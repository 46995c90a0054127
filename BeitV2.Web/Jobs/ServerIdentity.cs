namespace BeitV2.Web.Jobs;

/// <summary>This process's name among the servers sharing the job queue (host, process id, a random suffix).</summary>
public sealed class ServerIdentity
{
    public string Name { get; } = $"{Environment.MachineName.ToLowerInvariant()}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..6]}";
}
