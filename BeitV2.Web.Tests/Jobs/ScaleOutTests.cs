using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Ml.Training;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Services;
using Microsoft.AspNetCore.SignalR.Client;
using Xunit.Abstractions;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>PostgreSQL and Redis for the scale-out tests (one of each per test class).</summary>
public sealed class ScaleOutServices : IDisposable
{
    public PostgresServer Postgres { get; } = new();
    public RedisServer Redis { get; } = new();

    public void Dispose()
    {
        Redis.Dispose();
        Postgres.Dispose();
    }
}

/// <summary>
/// Two app processes sharing PostgreSQL (Hangfire), Redis (SignalR backplane) and a data directory,
/// as in the documented deployment, on loopback.
/// </summary>
[Collection(JobsCollection.Name)]
public sealed partial class ScaleOutTests(ScaleOutServices services, ITestOutputHelper output) : IClassFixture<ScaleOutServices>
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    // Short for a quick test, long enough that a starved but live server is not taken for dead: these are
    // minimum waits (the job is held through them), so a slow machine only makes the test longer.
    private const int InvisibilitySeconds = 10;
    private const int HeartbeatTimeoutSeconds = 30;

    /// <summary>3 epochs × <paramref name="stepsPerEpoch"/> steps, a checkpoint every 4 steps.</summary>
    private static object LongFineTune(int stepsPerEpoch, int batchSize = 16) => new
    {
        type = "finetune", dataset = "fashion-mnist",
        config = new
        {
            epochs = 3, batchSize = batchSize, maxTrainImages = batchSize * stepsPerEpoch, maxValImages = 32, lr = 2e-3, reportEverySteps = 1,
            checkpointEverySteps = 4,
        },
    };

    private string connectionString = "";

    /// <summary>Starts two servers on one shared data folder, runs <paramref name="test"/>, prints both servers' output when it fails.</summary>
    private async Task WithTwoServersAsync(Func<AppProcess, AppProcess, string, Task> test)
    {
        using var data = new TempDirectory();
        connectionString = services.Postgres.CreateDatabase();
        var settings = new Dictionary<string, string>
        {
            ["Storage:DataDirectory"] = data.Path,
            ["Jobs:Storage"] = "postgres",
            ["Jobs:ConnectionString"] = connectionString,
            ["Jobs:InvisibilityTimeoutSeconds"] = InvisibilitySeconds.ToString(),
            ["Jobs:HeartbeatTimeoutSeconds"] = HeartbeatTimeoutSeconds.ToString(),
            ["SignalR:Redis"] = services.Redis.ConnectionString,
            ["SignalR:ChannelPrefix"] = "t" + Guid.NewGuid().ToString("N")[..8],
            ["Ml:Device"] = "cpu",
            ["Ml:Threads"] = "1",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:BeitV2"] = "Information",
            [HeldStep.Setting] = "true",
        };
        using var a = new AppProcess("server A", new Dictionary<string, string>(settings) { ["Jobs:ServerName"] = "server-a" });
        using var b = new AppProcess("server B", new Dictionary<string, string>(settings) { ["Jobs:ServerName"] = "server-b" });
        try
        {
            await Task.WhenAll(a.WaitUntilLiveAsync(Timeout), b.WaitUntilLiveAsync(Timeout));
            await test(a, b, data.Path);
        }
        catch
        {
            output.WriteLine($"--- {a.Name}:\n{a.Output}\n--- {b.Name}:\n{b.Output}");
            throw;
        }
    }

    private static async Task<HubConnection> ConnectAsync(AppProcess server, ConcurrentQueue<(string Method, JsonElement Message)> received)
    {
        var hub = new HubConnectionBuilder().WithUrl(new Uri(server.BaseAddress, "/hubs/training")).Build().Patient();
        foreach (var method in new[] { "progress", "status", "log" })
            hub.On<JsonElement>(method, m => received.Enqueue((method, m)));
        await hub.StartAsync();
        return hub;
    }

    /// <summary>The server whose process id is in the record's <c>server</c> name.</summary>
    private static AppProcess Runner(JsonElement job, params AppProcess[] servers) =>
        servers.Single(s => RanOn(job.Str("server"), s));

    /// <summary>Server names in records are Jobs:ServerName plus a random suffix (no host name or pid).</summary>
    private static bool RanOn(string server, AppProcess process) =>
        server.StartsWith((process.Name == "server A" ? "server-a" : "server-b") + "-", StringComparison.Ordinal);

    [Fact]
    public async Task JobSubmittedToA_IsWatchedFromTheOtherServer_AndSurvivesTheDeathOfItsServer()
    {
        await WithTwoServersAsync(async (a, b, data) =>
        {
            // Held at step 10 (after the checkpoint at 8) on whichever server runs it, however fast the machine is.
            using var hold = new HeldStep(data, 10);
            var id = await Jobs.StartAsync(a.Client, LongFineTune(8));
            var running = await Jobs.WaitForStepAsync(b.Client, id, hold.Step, Timeout); // B reads A's job: one shared store
            var heldAt = DateTime.UtcNow;
            var runner = Runner(running, a, b);
            var watcher = runner == a ? b : a;

            // A browser on the other server sees the progress through the Redis backplane.
            var received = new ConcurrentQueue<(string Method, JsonElement Message)>();
            await using var hub = await ConnectAsync(watcher, received);
            await hub.InvokeAsync("Subscribe", id);
            var until = DateTime.UtcNow + Timeout;
            while (!received.Any(r => r.Method == "progress" && r.Message.Str("jobId") == id) && DateTime.UtcNow < until) await Task.Delay(100);
            Assert.Contains(received, r => r.Method == "progress" && r.Message.Str("jobId") == id);

            // The lease slides: held (running) for 2.5 invisibility timeouts, the job was handed out once. A minimum
            // wait on purpose: lease expiry is time-based; the hold makes sure the job cannot end before it does.
            var beforeKill = await WaitForCheckpointAsync(watcher.Client, id, 8);
            var wait = heldAt.AddSeconds(2.5 * InvisibilitySeconds) - DateTime.UtcNow;
            if (wait > TimeSpan.Zero) await Task.Delay(wait);
            var stillRunning = await Jobs.GetAsync(watcher.Client, id);
            Assert.Equal("running", stillRunning.Str("status"));
            Assert.Equal(hold.Step, stillRunning.Step());
            Assert.Equal(1, stillRunning.Int("runs"));
            Assert.Equal(1, await ProcessingCountAsync(id));

            // Kill the runner while it holds the job (no shutdown hook runs), then let the survivor through step 10.
            runner.Kill();
            var killedAt = (await Jobs.GetAsync(watcher.Client, id)).Step();
            var checkpointAtKill = Directory.GetDirectories(Path.Combine(data, "jobs", id, "checkpoints")).SelectMany(TrainingCheckpoint.List).Max(c => c.Step);
            output.WriteLine($"{runner.Name} (pid {runner.ProcessId}) killed at step {killedAt}, newest checkpoint {checkpointAtKill}");
            Assert.Equal(hold.Step, killedAt);
            Assert.Equal(8, checkpointAtKill);
            hold.Release();

            var done = await Jobs.WaitAsync(watcher.Client, id, Timeout, "succeeded");
            Assert.Equal(24, done.Step());
            Assert.Equal(2, done.Int("runs"));
            Assert.Same(watcher, Runner(done, a, b));
            Assert.Equal(2, await ProcessingCountAsync(id)); // the dead server's lease lapsed once, and only once

            // Each step range ran once: the survivor started after the newest checkpoint and ran every later step exactly once.
            var steps = (await watcher.Client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).EnumerateArray()
                .Where(m => m.Str("event") == "step").Select(m => (Step: m.GetProperty("step").GetInt64(), Server: m.Str("server"))).ToList();
            var dead = steps.Where(s => RanOn(s.Server, runner)).Select(s => s.Step).ToList();
            var survivor = steps.Where(s => RanOn(s.Server, watcher)).Select(s => s.Step).ToList();
            Assert.Equal(steps.Count, dead.Count + survivor.Count);
            Assert.Equal(dead.Count, dead.Distinct().Count());
            Assert.Equal(survivor.Count, survivor.Distinct().Count());
            Assert.Equal(checkpointAtKill + 1, survivor.Min());
            Assert.Equal(24, survivor.Max());
            Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), dead.Order());
            Assert.Equal(Enumerable.Range(1, 24).Select(i => (long)i), dead.Where(s => s <= checkpointAtKill).Concat(survivor).Order());
            Assert.True(beforeKill.Step() >= 8);

            // The browser on the survivor heard the end.
            until = DateTime.UtcNow + Timeout;
            while (!received.Any(r => r.Method == "status" && r.Message.Str("status") == "succeeded") && DateTime.UtcNow < until) await Task.Delay(100);
            Assert.Single(received, r => r.Method == "status" && r.Message.Str("jobId") == id && r.Message.Str("status") == "succeeded");

            // The output model is in the shared registry; the survivor serves it.
            var model = done.Str("outputModel");
            Assert.Equal(model, (await watcher.Client.PostAsync($"/api/v1/classify?model={model}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
        });
    }

    [Fact]
    public async Task CancelOnTheOtherServer_StopsTheJob_AndModelsAreSharedAcrossServers()
    {
        await WithTwoServersAsync(async (a, b, data) =>
        {
            // Held at step 3 until the cancel stops it there: the job cannot finish first.
            using var hold = new HeldStep(data, 3);
            var id = await Jobs.StartAsync(b.Client, LongFineTune(32));
            var running = await Jobs.WaitForStepAsync(a.Client, id, hold.Step, Timeout);
            var runner = Runner(running, a, b);
            var other = runner == a ? b : a;

            var accepted = await other.Client.PostAsync($"/api/v1/jobs/{id}/cancel", null).JsonAsync(HttpStatusCode.Accepted);
            Assert.Equal(id, accepted.Str("id"));
            var cancelled = await Jobs.WaitAsync(other.Client, id, Timeout, "cancelled");
            Assert.Equal(hold.Step, cancelled.Step());
            Assert.Contains(cancelled.Items("checkpoints"), c => c.GetProperty("step").GetInt64() == cancelled.Step());
            Assert.False(runner.HasExited);
            hold.Release();

            // Resume through the other server; whoever picks it up continues from the checkpoint.
            await other.Client.PostAsync($"/api/v1/jobs/{id}/resume", null).JsonAsync(HttpStatusCode.Accepted);
            var done = await Jobs.WaitAsync(runner.Client, id, Timeout, "succeeded");
            Assert.Equal(96, done.Step());
            Assert.Equal(2, done.Int("runs"));

            // The registry is one: the model the job registered is listed and made default on one server, seen on the other.
            var model = done.Str("outputModel");
            var onA = await a.Client.GetAsync("/api/v1/models").JsonAsync();
            Assert.Contains(onA.EnumerateArray(), m => m.Str("id") == model);
            (await b.Client.PostAsync($"/api/v1/models/{model}/default", null)).EnsureSuccessStatusCode();
            await AgreeAsync(model, a); // A reads B's change from the database's change counter (polled every 250 ms)
            Assert.True((await a.Client.GetAsync($"/api/v1/models/{model}").JsonAsync()).GetProperty("isDefault").GetBoolean());
            Assert.Equal(model, (await a.Client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
            Assert.Equal(HttpStatusCode.Conflict, (await a.Client.DeleteAsync($"/api/v1/models/{model}")).StatusCode); // A knows it is B's default
        });
    }

    /// <summary>How often Hangfire handed the job's queue entries to a worker (its "Processing" states in PostgreSQL).</summary>
    private async Task<long> ProcessingCountAsync(string jobId)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var query = new Npgsql.NpgsqlCommand(
            "SELECT count(*) FROM hangfire.state s JOIN hangfire.job j ON j.id = s.jobid WHERE s.name = 'Processing' AND j.arguments::text LIKE @id", connection);
        query.Parameters.AddWithValue("id", $"%{jobId}%");
        return (long)(await query.ExecuteScalarAsync())!;
    }

    private static async Task<JsonElement> WaitForCheckpointAsync(HttpClient client, string id, long step)
    {
        var until = DateTime.UtcNow + Timeout;
        JsonElement job;
        do
        {
            job = await Jobs.GetAsync(client, id);
            if (job.Items("checkpoints").Any(c => c.GetProperty("step").GetInt64() >= step)) return job;
            if (job.Str("status") is "failed" or "succeeded" or "cancelled") Assert.Fail($"job {id} ended before checkpoint {step}: {job}");
            await Task.Delay(50);
        } while (DateTime.UtcNow < until);
        Assert.Fail($"job {id} wrote no checkpoint at step {step} within {Timeout}: {job}");
        return job;
    }
}
