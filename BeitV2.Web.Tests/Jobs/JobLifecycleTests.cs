using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.SignalR.Client;

namespace BeitV2.Web.Tests.Jobs;

[Collection(JobsCollection.Name)]
public sealed class JobLifecycleTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    /// <summary>A fine-tune long enough to interrupt: 3 epochs × 32 steps.</summary>
    private static object LongFineTune => new
    {
        type = "finetune", dataset = "fashion-mnist",
        config = new { epochs = 3, batchSize = 16, maxTrainImages = 512, maxValImages = 32, lr = 2e-3, reportEverySteps = 1 },
    };

    [Fact]
    public async Task SignalRClient_ReceivesProgressAndTheFinalStatus()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var progress = new ConcurrentQueue<JsonElement>();
        var statuses = new ConcurrentQueue<JsonElement>();
        var logs = new ConcurrentQueue<JsonElement>();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(host.Server.BaseAddress, "/hubs/training"), o => o.HttpMessageHandlerFactory = _ => host.Server.CreateHandler())
            .Build().Patient();
        hub.On<JsonElement>("progress", progress.Enqueue);
        hub.On<JsonElement>("status", statuses.Enqueue);
        hub.On<JsonElement>("log", logs.Enqueue);
        await hub.StartAsync();
        await hub.InvokeAsync("SubscribeAll");

        var id = await Jobs.StartAsync(client, new { type = "finetune", dataset = "fashion-mnist", config = new { batchSize = 16, maxTrainImages = 128, maxValImages = 32, reportEverySteps = 2 } });
        await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        var until = DateTime.UtcNow + Timeout; // the hub message follows the REST state; a loaded machine may take a while
        while (!statuses.Any(s => s.Str("status") == "succeeded") && DateTime.UtcNow < until) await Task.Delay(50);

        Assert.Contains(statuses, s => s.Str("jobId") == id && s.Str("status") == "running");
        Assert.Contains(statuses, s => s.Str("jobId") == id && s.Str("status") == "succeeded");
        Assert.NotEmpty(progress);
        var p = progress.Last();
        Assert.Equal(id, p.Str("jobId"));
        Assert.Equal("finetune", p.Str("type"));
        Assert.Equal(8, p.GetProperty("steps").GetInt64());
        foreach (var key in new[] { "epoch", "epochs", "step", "loss", "lr", "imagesPerSecond", "etaSeconds", "metrics", "status" })
            Assert.True(p.TryGetProperty(key, out _), $"progress has no {key}: {p}");
        Assert.Contains(progress, m => m.GetProperty("metrics").TryGetProperty("accuracy", out _));
        // One epoch counted from 1 everywhere: the hub says epoch 1 of 1 from the first report to the last.
        Assert.All(progress.Where(m => m.Str("jobId") == id), m => Assert.Equal((1, 1), (m.Int("epoch"), m.Int("epochs"))));
        Assert.Contains(logs, l => l.Str("jobId") == id && l.Str("line").Contains("finished"));
        host.AssertNoServerErrors();
    }

    private static readonly Dictionary<string, string?> Hooks = new() { [HeldStep.Setting] = "true" };

    [Fact]
    public async Task Cancel_SavesACheckpoint_ResumeContinuesFromIt()
    {
        using var host = new ApiHost(Hooks);
        using var client = host.CreateClient();
        using var hold = new HeldStep(host.DataDirectory, 5); // the cancel arrives while the job is at step 5, on any machine
        var id = await Jobs.StartAsync(client, LongFineTune);
        await Jobs.WaitForStepAsync(client, id, hold.Step, Timeout);
        var accepted = await client.PostAsync($"/api/v1/jobs/{id}/cancel", null).JsonAsync(HttpStatusCode.Accepted);
        Assert.Equal(id, accepted.Str("id"));
        var cancelled = await Jobs.WaitAsync(client, id, Timeout, "cancelled");
        var stoppedAt = cancelled.Step();
        Assert.Equal(hold.Step, stoppedAt); // the cancel ended the hold and stopped the job before its next step
        var checkpoint = Assert.Single(cancelled.Items("checkpoints"));
        Assert.Equal(stoppedAt, checkpoint.GetProperty("step").GetInt64());
        Assert.False(cancelled.TryGetProperty("outputModel", out var om) && om.ValueKind == JsonValueKind.String);
        await client.PostAsync($"/api/v1/jobs/{id}/cancel", null).ProblemAsync(409);
        var metricsBefore = (await client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).GetArrayLength();

        hold.Release();
        await client.PostAsync($"/api/v1/jobs/{id}/resume", null).JsonAsync(HttpStatusCode.Accepted);
        var done = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        Assert.Equal(96, done.Step());
        Assert.Equal(2, done.Int("runs"));
        var metrics = (await client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).EnumerateArray().ToList();
        var resumedSteps = metrics.Skip(metricsBefore).Select(m => m.GetProperty("step").GetInt64()).ToList();
        Assert.NotEmpty(resumedSteps);
        Assert.True(resumedSteps.Min() > stoppedAt, $"the resumed run started over: steps {string.Join(",", resumedSteps)} after {stoppedAt}");
        await client.PostAsync($"/api/v1/jobs/{id}/resume", null).ProblemAsync(409);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task HostRestart_ContinuesTheJobFromItsCheckpoint_Once()
    {
        using var data = new TempDirectory();
        var settings = new Dictionary<string, string?> { ["Storage:DataDirectory"] = data.Path, [HeldStep.Setting] = "true" };
        string id;
        long interruptedAt;
        using (var hold = new HeldStep(data.Path, 5)) // the host stops while the job is at step 5, on any machine
        using (var first = new ApiHost(settings))
        {
            using var client = first.CreateClient();
            id = await Jobs.StartAsync(client, LongFineTune);
            await Jobs.WaitForStepAsync(client, id, hold.Step, Timeout);
        } // stops the host mid-job (the shutdown ends the hold), then releases the hold
        var record = JsonDocument.Parse(File.ReadAllText(Path.Combine(data.Path, "jobs", id, "job.json"))).RootElement;
        interruptedAt = record.Step();
        Assert.Equal("queued", record.Str("status"));
        Assert.Equal(5, interruptedAt);
        Assert.Equal(interruptedAt, record.Items("checkpoints").Single().GetProperty("step").GetInt64());
        var linesBefore = File.ReadAllLines(Path.Combine(data.Path, "jobs", id, "metrics.jsonl")).Length;

        using (var second = new ApiHost(settings))
        {
            using var client = second.CreateClient();
            var done = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
            Assert.Equal(96, done.Step());
            Assert.Equal(2, done.Int("runs"));
            var metrics = (await client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).EnumerateArray().ToList();
            var after = metrics.Skip(linesBefore).Where(m => m.Str("event") == "step").Select(m => m.GetProperty("step").GetInt64()).ToList();
            Assert.NotEmpty(after);
            Assert.True(after.Min() > interruptedAt, $"restarted from scratch: {string.Join(",", after)} after {interruptedAt}");
            Assert.Equal(after.Distinct().Count(), after.Count); // not run twice
            await Task.Delay(1000); // a stale re-delivery of the old Hangfire job must not start another run
            Assert.Equal(2, (await Jobs.GetAsync(client, id)).Int("runs"));
            second.AssertNoServerErrors();
        }
    }

    [Fact]
    public async Task FineTune_OnAFashionMnistSubset_BeatsChanceClearly()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist",
            config = new { epochs = 4, batchSize = 32, maxTrainImages = 3000, maxValImages = 500, lr = 3e-3, warmupSteps = 20, minCropScale = 0.6, layerDecay = 0.9 },
        });
        var job = await Jobs.WaitAsync(client, id, Jobs.Patience, "succeeded");
        var accuracy = job.GetProperty("lastMetrics").GetProperty("accuracy").GetDouble();
        Assert.True(accuracy > 0.5, $"held-out accuracy {accuracy} (chance 0.1)");

        // The output says what it knows: its dataset and measured accuracy, and an out-of-domain fit made at the end of the job.
        var model = await client.GetAsync($"/api/v1/models/{job.Str("outputModel")}").JsonAsync();
        var domain = model.GetProperty("domain");
        Assert.Equal("Fashion-MNIST", domain.Str("dataset"));
        Assert.Equal("accuracy", domain.GetProperty("quality").Str("metric"));
        Assert.Equal(accuracy, domain.GetProperty("quality").GetProperty("value").GetDouble(), 4);
        Assert.Equal(10, domain.GetProperty("classes").GetArrayLength());
        Assert.True(domain.GetProperty("outOfDomain").GetProperty("fitImages").GetInt32() >= 2);
        var answer = await client.PostAsync($"/api/v1/classify?model={job.Str("outputModel")}", Http.Images(SeededApi.SmallImage)).JsonAsync();
        Assert.Equal(JsonValueKind.Object, answer.Items("images")[0].GetProperty("outOfDomain").ValueKind);
        var log = await client.GetAsync($"/api/v1/jobs/{id}/log").JsonAsync();
        Assert.Contains(log.Items("lines"), l => l.GetString()!.Contains("out-of-domain score fitted"));
        host.AssertNoServerErrors();
    }
}
