using System.Text.Json;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>Split brain: a server paused past its lease comes back after another server took its job over.</summary>
public sealed partial class ScaleOutTests
{
    [Fact]
    public async Task PausedServer_ComingBackAfterATakeover_WritesNothingMore()
    {
        await WithTwoServersAsync(async (a, b, data) =>
        {
            // Held at step 10 (after the checkpoint at 8) on whichever server runs it: the job cannot move while we look.
            using var hold = new HeldStep(data, 10);
            var id = await Jobs.StartAsync(a.Client, LongFineTune(8));
            var running = await WaitForCheckpointAsync(b.Client, id, 8);
            running = await Jobs.WaitForStepAsync(b.Client, id, hold.Step, Timeout);
            var paused = Runner(running, a, b);
            var other = paused == a ? b : a;
            var pausedRun = RunFolderOf(running);

            // Freeze the runner (SIGSTOP: its sockets stay open, its lease timer stops) past the lease: the other server takes
            // the job over from the checkpoint at 8 and is held at step 10 in turn.
            paused.Pause();
            JsonElement takenOver;
            try
            {
                takenOver = await WaitUntilAsync(other.Client, id, j => RanOn(j.Str("server"), other) && j.Int("runs") == 2 && j.Step() == hold.Step);
            }
            catch
            {
                paused.Resume();
                throw;
            }
            var folder = Path.Combine(data, "jobs", id, "checkpoints");
            var pausedFolderBefore = Snapshot(Path.Combine(folder, pausedRun));
            var metricsBefore = await MetricsAsync(other.Client, id);
            var modelsBefore = (await other.Client.GetAsync("/api/v1/models").JsonAsync()).GetArrayLength();
            Assert.DoesNotContain(metricsBefore, m => RanOn(m.Server, paused) && m.Step > hold.Step);

            // Wake it: its lease timer finds another run in the record and stops the run, which would checkpoint on the way out.
            paused.Resume();
            await WaitForOutputAsync(paused, $"Job {id}: another server claimed the job");
            Assert.False(paused.HasExited);
            Assert.True((await paused.Client.GetAsync("/health/live")).IsSuccessStatusCode);

            // Nothing from the paused run after it resumed: no checkpoint, no metric, no model, no status.
            Assert.Equal(pausedFolderBefore, Snapshot(Path.Combine(folder, pausedRun)));
            Assert.Equal(metricsBefore, await MetricsAsync(other.Client, id));
            Assert.Equal(modelsBefore, (await other.Client.GetAsync("/api/v1/models").JsonAsync()).GetArrayLength());
            var record = await Jobs.GetAsync(paused.Client, id);
            Assert.Equal("running", record.Str("status"));
            Assert.True(RanOn(record.Str("server"), other));
            Assert.Equal(takenOver.Str("runId"), record.Str("runId"));

            // Let the survivor finish: every step after the takeover ran once, there, and the job has one output model.
            hold.Release();
            var done = await Jobs.WaitAsync(other.Client, id, Timeout, "succeeded");
            Assert.Equal(24, done.Step());
            Assert.Equal(2, done.Int("runs"));
            var steps = (await MetricsAsync(other.Client, id)).Where(m => m.Event == "step").ToList();
            var first = steps.Where(s => RanOn(s.Server, paused)).Select(s => s.Step).ToList();
            var second = steps.Where(s => RanOn(s.Server, other)).Select(s => s.Step).ToList();
            Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), first.Order());
            Assert.Equal(Enumerable.Range(9, 16).Select(i => (long)i), second.Order());
            var outputs = (await other.Client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray()
                .Where(m => m.TryGetProperty("lineage", out var l) && l.ValueKind == JsonValueKind.Object && l.Str("jobId") == id).ToList();
            Assert.Equal(done.Str("outputModel"), Assert.Single(outputs).Str("id"));
            // The survivor's run folder is the only one left: it dropped the paused run's folder at its first checkpoint.
            Assert.Equal([RunFolderOf(done)], Directory.GetDirectories(folder).Select(d => Path.GetFileName(d)).ToList());
        });
    }

    /// <summary>The run folder of the record's newest checkpoint (checkpoints/run-{run id}/checkpoint-N).</summary>
    private static string RunFolderOf(JsonElement job) =>
        job.Items("checkpoints").Select(c => c.Str("path")).Last().Split('/')[^2];

    /// <summary>Names, sizes and times of every file under <paramref name="folder"/> ("" when it does not exist).</summary>
    private static string Snapshot(string folder) => !Directory.Exists(folder) ? "" : string.Join("\n",
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => $"{Path.GetRelativePath(folder, f)} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f):O}"));

    private sealed record Metric(long Step, string Event, string Server);

    private static async Task<List<Metric>> MetricsAsync(HttpClient client, string id) =>
        (await client.GetAsync($"/api/v1/jobs/{id}/metrics").JsonAsync()).EnumerateArray()
            .Select(m => new Metric(m.GetProperty("step").GetInt64(), m.Str("event"), m.Str("server"))).ToList();

    private static async Task<JsonElement> WaitUntilAsync(HttpClient client, string id, Func<JsonElement, bool> condition)
    {
        var until = DateTime.UtcNow + Timeout;
        JsonElement job;
        do
        {
            job = await Jobs.GetAsync(client, id);
            if (condition(job)) return job;
            if (job.Str("status") is "failed" or "succeeded" or "cancelled") Assert.Fail($"job {id} ended: {job}");
            await Task.Delay(100);
        } while (DateTime.UtcNow < until);
        Assert.Fail($"job {id} did not get there within {Timeout}: {job}");
        return job;
    }

    private static async Task WaitForOutputAsync(Services.AppProcess server, string text)
    {
        var until = DateTime.UtcNow + Timeout;
        while (!server.Output.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > until) Assert.Fail($"{server.Name} never said \"{text}\"");
            await Task.Delay(100);
        }
    }
}
