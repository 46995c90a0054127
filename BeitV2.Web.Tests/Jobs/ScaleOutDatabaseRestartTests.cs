using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The coordinating database restarts while a job runs.</summary>
public sealed partial class ScaleOutTests
{
    [Fact]
    public async Task DatabaseRestartMidJob_TheJobCarriesOn_AndNoStepIsLostOrRunTwice()
    {
        await WithTwoServersAsync(async (a, b, data) =>
        {
            using var hold = new HeldStep(data, 6);
            var id = await Jobs.StartAsync(a.Client, LongFineTune(8));
            var running = await Jobs.WaitForStepAsync(a.Client, id, hold.Step, Timeout);
            var runner = Runner(running, a, b);

            // A fast shutdown cuts every connection (as a failover does); the held job's lease timer keeps asking meanwhile.
            services.Postgres.Restart();
            hold.Release();

            var done = await Jobs.WaitAsync(b.Client, id, Timeout, "succeeded");
            Assert.Equal(24, done.Step());
            Assert.True(done.Int("runs") is 1 or 2, $"runs: {done.Int("runs")}");
            output.WriteLine($"after the restart the job finished with runs = {done.Int("runs")} on {done.Str("server")}");
            // Every step is in the metrics once per run that did it, and the steps after the newest checkpoint before any
            // takeover ran once: with one run, 1..24 exactly once.
            var steps = (await MetricsAsync(b.Client, id)).Where(m => m.Event == "step").Select(m => m.Step).ToList();
            Assert.Equal(Enumerable.Range(1, 24).Select(i => (long)i), steps.Distinct().Order());
            if (done.Int("runs") == 1) Assert.Equal(24, steps.Count);
            Assert.False(runner.HasExited);
            Assert.True((await a.Client.GetAsync("/health/live")).IsSuccessStatusCode);
            Assert.True((await b.Client.GetAsync("/health/live")).IsSuccessStatusCode);
            // The output model is registered once and served.
            var model = done.Str("outputModel");
            Assert.Equal(model, (await b.Client.PostAsync($"/api/v1/classify?model={model}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
        });
    }
}
