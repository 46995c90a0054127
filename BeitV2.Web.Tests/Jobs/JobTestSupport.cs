using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>
/// Job tests train (torch's global generator) and run Hangfire servers: they run on their own, never
/// next to another host or the trainer tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class JobsCollection
{
    public const string Name = "jobs";
}

internal static class Jobs
{
    /// <summary>
    /// How long a test waits for a job event before it fails: minutes, far beyond what the tiny jobs take even on a
    /// loaded 2-core machine, so that only a job that never gets there fails (never one that is merely slow).
    /// </summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(10);

    public static async Task<string> StartAsync(HttpClient client, object request)
    {
        var json = await client.PostAsJsonAsync("/api/v1/jobs", request).JsonAsync(HttpStatusCode.Accepted);
        Assert.Equal("queued", json.Str("status"));
        return json.Str("id");
    }

    public static async Task<JsonElement> GetAsync(HttpClient client, string id) => await client.GetAsync($"/api/v1/jobs/{id}").JsonAsync();

    /// <summary>Polls until the job reaches one of <paramref name="statuses"/> (or fails the test with the job's state).</summary>
    public static async Task<JsonElement> WaitAsync(HttpClient client, string id, TimeSpan timeout, params string[] statuses)
    {
        var until = DateTime.UtcNow + timeout;
        JsonElement job;
        do
        {
            job = await GetAsync(client, id);
            var status = job.Str("status");
            if (statuses.Contains(status)) return job;
            if (status == "failed" && !statuses.Contains("failed"))
                Assert.Fail($"job {id} failed: {job.GetProperty("error")}");
            await Task.Delay(100);
        } while (DateTime.UtcNow < until);
        Assert.Fail($"job {id} did not reach {string.Join("/", statuses)} within {timeout}: {job}");
        return job;
    }

    /// <summary>Polls until the job's step counter reaches <paramref name="step"/>.</summary>
    public static async Task<JsonElement> WaitForStepAsync(HttpClient client, string id, long step, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        JsonElement job;
        do
        {
            job = await GetAsync(client, id);
            if (job.GetProperty("progress").GetProperty("step").GetInt64() >= step) return job;
            if (job.Str("status") is "failed" or "succeeded" or "cancelled") Assert.Fail($"job {id} ended before step {step}: {job}");
            await Task.Delay(50);
        } while (DateTime.UtcNow < until);
        Assert.Fail($"job {id} did not reach step {step} within {timeout}: {job}");
        return job;
    }

    public static long Step(this JsonElement job) => job.GetProperty("progress").GetProperty("step").GetInt64();

    /// <summary>
    /// A hub connection that waits for a loaded machine: the client's 30 s server timeout and 15 s handshake
    /// timeout are clocks a starved test host can miss (seen at load average 48), which the tests do not test.
    /// </summary>
    public static Microsoft.AspNetCore.SignalR.Client.HubConnection Patient(this Microsoft.AspNetCore.SignalR.Client.HubConnection hub)
    {
        hub.ServerTimeout = TimeSpan.FromMinutes(5);
        hub.HandshakeTimeout = TimeSpan.FromMinutes(2);
        return hub;
    }
}

/// <summary>
/// Holds every job of the servers on <paramref name="dataDirectory"/> (in this process or another) right
/// after it reports step <paramref name="step"/>, until <see cref="Release"/> (or Dispose): the server's
/// <see cref="BeitV2.Web.Jobs.JobHold"/> hook, on with <see cref="Setting"/> = true. Tests hold a job
/// where they need it running instead of racing the training against the clock. The step must be a
/// reported one (a multiple of the job's reportEverySteps).
/// </summary>
internal sealed class HeldStep : IDisposable
{
    public const string Setting = "Jobs:EnableTestHooks";

    private readonly string file;

    public HeldStep(string dataDirectory, long step)
    {
        Step = step;
        file = Path.Combine(dataDirectory, BeitV2.Web.Jobs.JobHold.FileName(step));
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, "");
    }

    public long Step { get; }

    public void Release() => File.Delete(file);

    public void Dispose() => Release();
}
