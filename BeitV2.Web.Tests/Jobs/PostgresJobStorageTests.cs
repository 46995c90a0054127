using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Services;
using Npgsql;

namespace BeitV2.Web.Tests.Jobs;

/// <summary><c>Jobs:Storage = postgres</c> against a real PostgreSQL server on loopback.</summary>
[Collection(JobsCollection.Name)]
public sealed class PostgresJobStorageTests(PostgresServer postgres) : IClassFixture<PostgresServer>
{
    private static readonly TimeSpan Timeout = Jobs.Patience;

    [Fact]
    public async Task Job_RunsToSuccess_WithItsQueueInPostgres()
    {
        var connectionString = postgres.CreateDatabase();
        using var host = new ApiHost(new Dictionary<string, string?>
        {
            ["Jobs:Storage"] = "postgres", ["Jobs:ConnectionString"] = connectionString, ["Jobs:Schema"] = "beitv2_jobs",
        });
        using var client = host.CreateClient();
        var id = await Jobs.StartAsync(client, new { type = "finetune", dataset = "fashion-mnist", config = new { batchSize = 16, maxTrainImages = 64, maxValImages = 16 } });
        var job = await Jobs.WaitAsync(client, id, Timeout, "succeeded");
        var model = job.Str("outputModel");
        Assert.Equal(model, (await client.PostAsync($"/api/v1/classify?model={model}", Http.Images(TestImages.Png(40, 30))).JsonAsync()).Str("model"));

        // Hangfire really used the database: the job's invocation and its final state are there.
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var query = new NpgsqlCommand("SELECT statename, invocationdata::text FROM beitv2_jobs.job", connection);
        await using var reader = await query.ExecuteReaderAsync();
        var rows = new List<(string State, string Invocation)>();
        while (await reader.ReadAsync()) rows.Add((reader.GetString(0), reader.GetString(1)));
        var row = Assert.Single(rows);
        Assert.Contains("JobRunner", row.Invocation);
        Assert.Equal("Succeeded", row.State);

        // A finished job is deleted with its folder; the queue's history stays the queue's business.
        Assert.True(job.GetProperty("diskBytes").GetInt64() > 0);
        using (var deleted = await client.DeleteAsync($"/api/v1/jobs/{id}"))
            Assert.Equal(System.Net.HttpStatusCode.NoContent, deleted.StatusCode);
        await client.GetAsync($"/api/v1/jobs/{id}").ProblemAsync(404);
        Assert.False(Directory.Exists(Path.Combine(host.DataDirectory, "jobs", id)));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task UnreachableDatabase_FailsStartUp_WithAClearMessage()
    {
        var closedPort = LocalServerProcess.FreePort(); // nothing listens there
        using var host = new ApiHost(new Dictionary<string, string?>
        {
            ["Jobs:Storage"] = "postgres", ["Jobs:ConnectionString"] = $"Host=127.0.0.1;Port={closedPort};Username=beitv2;Database=none",
            ["Jobs:ConnectTimeoutSeconds"] = "3",
        });
        // The hang guard is generous; what matters is that start-up ends with the reason, not that it is quick.
        var error = await Assert.ThrowsAnyAsync<Exception>(() => Task.Run(() => host.CreateClient()).WaitAsync(TimeSpan.FromSeconds(90)));
        var messages = string.Join(" | ", Chain(error).Select(e => e.Message));
        Assert.Contains("cannot reach the job database", messages);
        Assert.Contains($"127.0.0.1:{closedPort}", messages);
    }

    [Fact]
    public async Task MissingConnectionString_FailsStartUp_WithAClearMessage()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Jobs:Storage"] = "postgres" });
        var error = await Assert.ThrowsAnyAsync<Exception>(() => Task.Run(() => host.CreateClient()).WaitAsync(TimeSpan.FromSeconds(90)));
        Assert.Contains("needs Jobs:ConnectionString", string.Join(" | ", Chain(error).Select(e => e.Message)));
    }

    private static IEnumerable<Exception> Chain(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            yield return x;
            if (x is AggregateException a)
                foreach (var inner in a.InnerExceptions.SelectMany(Chain)) yield return inner;
        }
    }
}
