using System.Collections.Concurrent;
using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Web.Tests.Api;
using Microsoft.AspNetCore.SignalR.Client;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Jobs;

[Collection(JobsCollection.Name)]
public sealed class JobCheckpointsAndFailuresTests
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    [Fact]
    public async Task Job_KeepsTheNewestCheckpoints_AndListsOnlyThose()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist",
            config = new { epochs = 1, batchSize = 16, maxTrainImages = 160, maxValImages = 16, checkpointEverySteps = 2, keepCheckpoints = 2 },
        });
        var job = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        Assert.Equal(10, job.Step());
        var listed = job.Items("checkpoints").Select(c => (Step: c.GetProperty("step").GetInt64(), Path: c.Str("path"))).ToList();
        Assert.Equal([8L, 10L], listed.Select(c => c.Step));
        // Clients see paths relative to the data directory, never where the server keeps its files.
        // Each run writes into a folder of its own (checkpoints/run-{run id}); this job had one run.
        var run = Assert.Single(Directory.GetDirectories(Path.Combine(host.DataDirectory, "jobs", id, "checkpoints")));
        Assert.Matches("^run-[0-9a-f]{32}$", Path.GetFileName(run));
        var runFolder = $"jobs/{id}/checkpoints/{Path.GetFileName(run)}";
        Assert.All(listed, c => Assert.Equal($"{runFolder}/checkpoint-{c.Step:D8}", c.Path));
        Assert.All(listed, c => Assert.True(Directory.Exists(Path.Combine(host.DataDirectory, c.Path)), $"listed checkpoint {c.Path} is missing"));
        var onDisk = Directory.GetDirectories(run).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["checkpoint-00000008", "checkpoint-00000010"], onDisk);
        var model = await client.GetAsync($"/api/v1/models/{job.Str("outputModel")}").JsonAsync();
        Assert.Equal($"{runFolder}/checkpoint-00000010", model.GetProperty("lineage").Str("checkpoint"));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task NonFiniteLoss_FailsTheJob_WithAClearError()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        // A corrupt base model (one NaN weight) makes the very first loss NaN.
        var vit = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0));
        using (no_grad()) vit.get_parameter("patch_embed.proj.weight")!.index_put_(float.NaN, 0, 0, 0, 0);
        var broken = host.Seed(vit, "corrupt backbone");

        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist", baseModel = broken.Id,
            config = new { batchSize = 8, maxTrainImages = 32, maxValImages = 8 },
        });
        var job = await Jobs.WaitAsync(client, id, Timeout, "failed");
        var error = job.Str("error");
        Assert.Contains("diverged", error);
        Assert.Contains("NaN", error);
        Assert.False(job.TryGetProperty("outputModel", out var om) && om.ValueKind == JsonValueKind.String, "a failed job registered a model");
        var models = await client.GetAsync("/api/v1/models").JsonAsync();
        Assert.Equal(1, models.GetArrayLength()); // only the seeded backbone
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode); // the server stays up
        host.AssertNoServerErrors(); // a diverged job is the user's problem, not a server error
    }

    [Fact]
    public async Task HubClient_SubscribedToAJobAndToAll_GetsEachMessageOnce()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { [HeldStep.Setting] = "true" });
        using var client = host.CreateClient();
        var statuses = new ConcurrentQueue<JsonElement>();
        var logs = new ConcurrentQueue<JsonElement>();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(host.Server.BaseAddress, "/hubs/training"), o => o.HttpMessageHandlerFactory = _ => host.Server.CreateHandler())
            .Build().Patient();
        hub.On<JsonElement>("status", statuses.Enqueue);
        hub.On<JsonElement>("log", logs.Enqueue);
        await hub.StartAsync();

        // Held at step 10 until the subscriptions are in: the job cannot end before its watcher subscribes.
        using var hold = new HeldStep(host.DataDirectory, 10);
        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist",
            config = new { epochs = 2, batchSize = 16, maxTrainImages = 256, maxValImages = 16 },
        });
        await hub.InvokeAsync("Subscribe", id);
        await hub.InvokeAsync("SubscribeAll");
        await hub.InvokeAsync("Subscribe", id); // again: still once
        hold.Release();
        await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        var until = DateTime.UtcNow + Timeout; // the hub message follows the REST state; a loaded machine may take a while
        while (!statuses.Any(s => s.Str("status") == "succeeded") && DateTime.UtcNow < until) await Task.Delay(50);
        await Task.Delay(500); // a duplicate would arrive right behind the first copy

        Assert.Single(statuses, s => s.Str("jobId") == id && s.Str("status") == "succeeded");
        var lines = logs.Where(l => l.Str("jobId") == id).Select(l => l.Str("line")).ToList();
        Assert.NotEmpty(lines);
        Assert.Equal(lines.Count, lines.Distinct().Count());

        // Leaving "all" keeps the job subscription.
        await hub.InvokeAsync("UnsubscribeAll");
        var before = statuses.Count;
        await client.PostAsync($"/api/v1/jobs/{id}/cancel", null); // finished: 409, no message
        var second = await Jobs.StartAsync(client, new { type = "finetune", dataset = "fashion-mnist", config = new { batchSize = 16, maxTrainImages = 32, maxValImages = 8 } });
        await Jobs.WaitAsync(client, second, Timeout, "succeeded");
        await Task.Delay(1000);
        Assert.DoesNotContain(statuses.Skip(before), s => s.Str("jobId") == second);
        host.AssertNoServerErrors();
    }
}
