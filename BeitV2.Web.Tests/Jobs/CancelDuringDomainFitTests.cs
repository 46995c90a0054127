using BeitV2.Web.Jobs;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>
/// A cancel that arrives after training, while the output model's out-of-domain fit runs: the model is trained and
/// registered, so the job succeeds with it (without a score, as its log says); it never fails on the interruption.
/// The cancel is requested from the hook right after the registration, so the fit starts cancelled on any machine.
/// </summary>
[Collection(JobsCollection.Name)]
public sealed class CancelDuringDomainFitTests
{
    [Fact]
    public async Task CancelDuringTheFit_JobSucceedsWithItsModel_WithoutAScore()
    {
        JobScheduler? scheduler = null;
        var hooks = new JobRunnerHooks { AfterOutputRegistered = (jobId, _) => scheduler!.Cancel(jobId) };
        using var baseHost = new ApiHost();
        using var host = baseHost.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton(hooks)));
        using var client = host.CreateClient();
        scheduler = host.Services.GetRequiredService<JobScheduler>();

        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist",
            config = new { epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32 },
        });
        var done = await Jobs.WaitAsync(client, id, Jobs.Patience, "succeeded", "failed", "cancelled");
        Assert.Equal("succeeded", done.Str("status"));
        var model = await client.GetAsync($"/api/v1/models/{done.Str("outputModel")}").JsonAsync();
        Assert.Equal("fashion-mnist", model.GetProperty("domain").Str("datasetId"));
        Assert.False(model.GetProperty("domain").TryGetProperty("outOfDomain", out var fit) && fit.ValueKind == System.Text.Json.JsonValueKind.Object,
            "the interrupted fit left a score");
        var log = await client.GetAsync($"/api/v1/jobs/{id}/log").JsonAsync();
        Assert.Contains(log.Items("lines"), l => l.GetString()!.Contains("out-of-domain fit was interrupted"));
        baseHost.AssertNoServerErrors();
    }
}
