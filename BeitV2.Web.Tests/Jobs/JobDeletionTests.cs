using System.Net;
using System.Net.Http.Json;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>A job's disk use is reported, and a finished job can be deleted (folder, checkpoints), a queued or running one cannot.</summary>
[Collection(JobsCollection.Name)]
public sealed class JobDeletionTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    [Fact]
    public async Task FinishedJob_ReportsItsDiskUse_AndIsDeleted_WithItsCheckpoints_ButNotItsModel()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist", config = new { batchSize = 8, maxTrainImages = 16, maxValImages = 8 },
        });
        var job = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        var folder = Path.Combine(host.DataDirectory, "jobs", id);
        var checkpoint = Path.Combine(host.DataDirectory, job.Items("checkpoints").Single().Str("path"));
        var checkpointBytes = Directory.EnumerateFiles(checkpoint).Sum(f => new FileInfo(f).Length);
        var diskBytes = job.GetProperty("diskBytes").GetInt64();
        Assert.True(diskBytes > checkpointBytes, $"diskBytes {diskBytes} <= the checkpoint's {checkpointBytes}");
        var listed = (await client.GetAsync("/api/v1/jobs").JsonAsync()).EnumerateArray().Single(j => j.Str("id") == id);
        Assert.Equal(diskBytes, listed.GetProperty("diskBytes").GetInt64());
        Assert.DoesNotContain("diskBytes", File.ReadAllText(Path.Combine(folder, "job.json"))); // measured, never stored
        var model = job.Str("outputModel");

        using (var deleted = await client.DeleteAsync($"/api/v1/jobs/{id}"))
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);

        await client.GetAsync($"/api/v1/jobs/{id}").ProblemAsync(404);
        await client.GetAsync($"/api/v1/jobs/{id}/metrics").ProblemAsync(404);
        await client.DeleteAsync($"/api/v1/jobs/{id}").ProblemAsync(404);
        Assert.False(Directory.Exists(folder));
        Assert.False(Directory.Exists(checkpoint));
        // Left: the queue, and the single-server guard's lock and liveness files (SingleServerGuard).
        Assert.Equal(["hangfire.db"], Directory.GetFileSystemEntries(Path.Combine(host.DataDirectory, "jobs")).Select(Path.GetFileName)
            .Where(n => !n!.StartsWith("hangfire.db-", StringComparison.Ordinal) && !n.StartsWith("server.", StringComparison.Ordinal)));
        Assert.Equal(0, (await client.GetAsync("/api/v1/jobs").JsonAsync()).GetArrayLength());
        await client.GetAsync($"/api/v1/models/{model}").JsonAsync(); // the registered model stays
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task QueuedOrRunningJob_Gets409_AndKeepsItsFolder()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        // Records planted in the store (never enqueued): the job holds its state for as long as the test needs.
        var store = host.Services.GetRequiredService<JobStore>();
        store.Create(new JobRecord { Id = "job-held", Type = JobType.FineTune, Dataset = "fashion-mnist", Status = JobStatus.Queued, CreatedAt = DateTimeOffset.UtcNow });
        var folder = Path.Combine(host.DataDirectory, "jobs", "job-held");

        Assert.Contains("queued", await client.DeleteAsync("/api/v1/jobs/job-held").ProblemAsync(409));
        store.Update("job-held", j => j with { Status = JobStatus.Running });
        Assert.Contains("cancel", await client.DeleteAsync("/api/v1/jobs/job-held").ProblemAsync(409));
        Assert.True(File.Exists(Path.Combine(folder, "job.json")));
        Assert.Equal("running", (await Jobs.GetAsync(client, "job-held")).Str("status"));

        store.Update("job-held", j => j with { Status = JobStatus.Cancelled, FinishedAt = DateTimeOffset.UtcNow });
        using (var deleted = await client.DeleteAsync("/api/v1/jobs/job-held"))
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.False(Directory.Exists(folder));
        await client.DeleteAsync("/api/v1/jobs/.deleted-job-held").ProblemAsync(404); // not a job id
        await client.DeleteAsync("/api/v1/jobs/job-never").ProblemAsync(404);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task KeepCheckpoints_AboveTheMaximum_Gets400_NamingIt()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var detail = await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", config = new { keepCheckpoints = 21 } })
            .ProblemAsync(400);
        Assert.Contains("keepCheckpoints", detail);
        Assert.Contains("20", detail);
        await client.PostAsJsonAsync("/api/v1/jobs", new { type = "finetune", dataset = "fashion-mnist", config = new { keepCheckpoints = 1000 } }).ProblemAsync(400);
        Assert.Equal(0, (await client.GetAsync("/api/v1/jobs").JsonAsync()).GetArrayLength());
    }
}
