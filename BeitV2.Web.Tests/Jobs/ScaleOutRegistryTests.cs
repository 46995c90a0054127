using System.Diagnostics;
using System.Net;
using System.Text.Json;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The model registry shared by two servers: defaults in PostgreSQL, deletions seen everywhere.</summary>
public sealed partial class ScaleOutTests
{
    [Fact]
    public async Task DefaultChangesOnTwoServers_LastWriteWins_AndADeleteUnloadsTheModelOnTheOther()
    {
        await WithTwoServersAsync(async (a, b, data) =>
        {
            // Two classifiers of our own (tiny fine-tunes), one trained through each server.
            var tiny = new { type = "finetune", dataset = "fashion-mnist", config = new { batchSize = 8, maxTrainImages = 16, maxValImages = 8 } };
            var jobs = new[] { await Jobs.StartAsync(a.Client, tiny), await Jobs.StartAsync(b.Client, tiny) };
            var first = (await Jobs.WaitAsync(a.Client, jobs[0], Timeout, "succeeded")).Str("outputModel");
            var second = (await Jobs.WaitAsync(b.Client, jobs[1], Timeout, "succeeded")).Str("outputModel");
            Assert.NotEqual(first, second);

            // Both servers set defaults at the same time, many times over: every request succeeds, and afterwards the two
            // servers name the same default, which is the one the database holds (the last write).
            var writes = Enumerable.Range(0, 20).Select(async i =>
            {
                var (server, model) = i % 2 == 0 ? (a, first) : (b, second);
                using var r = await server.Client.PostAsync($"/api/v1/models/{model}/default", null);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            });
            await Task.WhenAll(writes);
            var stored = await StoredDefaultAsync("classifier");
            Assert.Contains(stored, new[] { first, second });
            await AgreeAsync(stored, a, b);

            // A last write on one server: the other serves it (the lag is printed; the watcher polls every 250 ms).
            var next = stored == first ? second : first;
            (await b.Client.PostAsync($"/api/v1/models/{next}/default", null)).EnsureSuccessStatusCode();
            var lag = Stopwatch.StartNew();
            await AgreeAsync(next, a);
            output.WriteLine($"server A served B's new default after {lag.ElapsedMilliseconds} ms");
            Assert.Equal(next, await StoredDefaultAsync("classifier"));
            Assert.Equal(next, (await a.Client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));

            // A deletes a model that B has loaded: B drops it from memory and no longer knows it.
            var gone = next == first ? second : first;
            Assert.Equal(gone, (await b.Client.PostAsync($"/api/v1/classify?model={gone}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));
            Assert.Contains(gone, await LoadedAsync(b));
            Assert.Equal(HttpStatusCode.Conflict, (await a.Client.DeleteAsync($"/api/v1/models/{next}")).StatusCode); // the default stays
            Assert.Equal(HttpStatusCode.NoContent, (await a.Client.DeleteAsync($"/api/v1/models/{gone}")).StatusCode);
            var until = DateTime.UtcNow + Timeout;
            while ((await LoadedAsync(b)).Contains(gone))
            {
                if (DateTime.UtcNow > until) Assert.Fail($"server B still has {gone} loaded");
                await Task.Delay(100);
            }
            await b.Client.GetAsync($"/api/v1/models/{gone}").ProblemAsync(404);
            await b.Client.PostAsync($"/api/v1/classify?model={gone}", Http.Images(TestImages.Png(40, 30))).ProblemAsync(404);
        });
    }

    /// <summary>Polls until every server's /api/v1/models says <paramref name="model"/> is the default classifier.</summary>
    private static async Task AgreeAsync(string model, params Services.AppProcess[] servers)
    {
        var until = DateTime.UtcNow + Timeout;
        foreach (var server in servers)
        {
            while (true)
            {
                var models = await server.Client.GetAsync("/api/v1/models").JsonAsync();
                var defaults = models.EnumerateArray().Where(m => m.Str("kind") == "classifier" && m.GetProperty("isDefault").GetBoolean())
                    .Select(m => m.Str("id")).ToList();
                if (defaults.SequenceEqual([model])) break;
                if (DateTime.UtcNow > until) Assert.Fail($"{server.Name} says the default classifier is {string.Join(", ", defaults)}, not {model}");
                await Task.Delay(50);
            }
        }
    }

    private static async Task<List<string>> LoadedAsync(Services.AppProcess server) =>
        (await server.Client.GetAsync("/api/v1/info").JsonAsync()).GetProperty("loadedModels").EnumerateArray().Select(e => e.GetString()!).ToList();

    private async Task<string> StoredDefaultAsync(string kind)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var query = new Npgsql.NpgsqlCommand("SELECT model_id FROM beitv2.model_defaults WHERE kind = @kind", connection);
        query.Parameters.AddWithValue("kind", kind);
        return (string)(await query.ExecuteScalarAsync())!;
    }
}
