using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Jobs;

/// <summary>
/// A test hook, off unless <c>Jobs:EnableTestHooks=true</c>: a running job that reports step N waits
/// right after that report (its record already says step N) for as long as the file
/// <c>{data}/test-hooks/hold-at-step-N</c> exists, and goes on when the file is deleted.
/// </summary>
/// <remarks>
/// Tests use it instead of racing training against the clock: "the job is still running after T
/// seconds" or "cancel arrives before the end" then hold on any machine, quiet or loaded. It is a
/// file, not an in-memory switch, so a test can hold a job inside another server process, and kill
/// that process while the job is held. A held job is really running: its lease timer renews the
/// heartbeat, and a cancel request, a shutdown or another server claiming the job ends the wait.
/// N must be a reported step (a multiple of the job's <c>reportEverySteps</c>). When the hook is off
/// nothing is looked up, and no upload or API call can create files in that folder.
/// </remarks>
public sealed class JobHold
{
    public const string Folder = "test-hooks";

    private readonly string? folder;
    private readonly ILogger<JobHold> logger;

    public JobHold(IOptions<JobsOptions> options, DataDirectory data, ILogger<JobHold> logger)
    {
        this.logger = logger;
        if (!options.Value.EnableTestHooks) return;
        folder = Path.Combine(data.Root, Folder);
        logger.LogWarning("Jobs:EnableTestHooks is on: jobs stop at a step while {Folder}/hold-at-step-N exists. This is for tests only.", Folder);
    }

    /// <summary>The file that holds every job at <paramref name="step"/>, relative to the data directory.</summary>
    public static string FileName(long step) => Path.Combine(Folder, $"hold-at-step-{step}");

    /// <summary>Returns at once unless the hook is on and a hold file for <paramref name="step"/> exists; then waits until it is deleted or <paramref name="stop"/> fires.</summary>
    public void WaitIfHeld(string jobId, long step, CancellationToken stop)
    {
        if (folder is null) return;
        var file = Path.Combine(folder, $"hold-at-step-{step}");
        if (!File.Exists(file)) return;
        logger.LogInformation("Job {Id} held at step {Step} by a test hook", jobId, step);
        while (File.Exists(file) && !stop.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(50))) { }
        logger.LogInformation("Job {Id} released at step {Step}", jobId, step);
    }
}
