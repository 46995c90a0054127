using System.Net;
using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>
/// The crash point between registering a job's output model and marking the job finished: the run is held
/// there by a hook (as a killed process would stop), the job is recovered as a restarted server does
/// (JobScheduler.Recover: re-queued under a new attempt), and the new run must find the registered model:
/// one model, the job succeeds with it, and no metrics or evaluation row is written twice.
/// </summary>
[Collection(JobsCollection.Name)]
public sealed class OutputRegistrationCrashTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    [Fact]
    public async Task RunDyingAfterRegistering_Restarted_OneModel_NoDuplicatedRows()
    {
        using var crashPoint = new ManualResetEventSlim(false);
        var registered = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var hooks = new JobRunnerHooks
        {
            AfterOutputRegistered = (_, model) =>
            {
                // The first run "dies" here: it never marks the job finished while the test looks. A second
                // registration (the bug) passes through, so the test fails on two models instead of hanging.
                if (registered.TrySetResult(model)) crashPoint.Wait();
            },
        };
        using var baseHost = new ApiHost(new Dictionary<string, string?> { ["Jobs:Workers"] = "2" });
        using var host = baseHost.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton(hooks)));
        using var client = host.CreateClient();
        try
        {
            var id = await Jobs.StartAsync(client, new
            {
                type = "finetune", dataset = "fashion-mnist",
                config = new { epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32, reportEverySteps = 1 },
            });
            var model = await registered.Task.WaitAsync(Timeout);
            var before = await Jobs.GetAsync(client, id);
            Assert.Equal("running", before.Str("status"));
            var metricsBefore = (await client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).GetArrayLength();

            // What a restarted server does with a job it finds running.
            host.Services.GetRequiredService<JobScheduler>().Recover();
            var done = await Jobs.WaitAsync(client, id, Timeout, "succeeded");

            Assert.Equal(model, done.Str("outputModel"));
            var models = (await client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray()
                .Where(m => m.TryGetProperty("lineage", out var l) && l.ValueKind == System.Text.Json.JsonValueKind.Object
                            && l.TryGetProperty("jobId", out var j) && j.GetString() == id).ToList();
            Assert.Single(models);
            var metricsAfter = (await client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).EnumerateArray().ToList();
            Assert.Equal(metricsBefore, metricsAfter.Count);
        }
        finally
        {
            crashPoint.Set();   // the held run wakes up fenced out: it writes nothing
        }
    }
}
