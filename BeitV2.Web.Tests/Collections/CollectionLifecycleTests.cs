using System.Net.Http.Json;
using System.Net;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Jobs;

namespace BeitV2.Web.Tests.Collections;

/// <summary>Index jobs held at a step with the test hook: cancel and resume, a job that fails, deletion while it runs, a collection without a tokenizer.</summary>
[Collection(JobsCollection.Name)]
public sealed class CollectionLifecycleTests
{
    private static ApiHost NewHost() => new(new Dictionary<string, string?> { ["Models:SeedDefaults"] = "true", [HeldStep.Setting] = "true" });

    [Fact]
    public async Task An_int8_collection_is_an_hnsw_index_that_still_finds_its_items_and_takes_uploads()
    {
        using var host = NewHost();
        using var client = host.CreateClient();
        Assert.Contains("'quantization' must be", await client.PostAsJsonAsync("/api/v1/collections",
            new { name = "bad", dataset = "fashion-mnist", quantization = "int4" }).ProblemAsync(400));
        var (id, job) = await CollectionsFixture.CreateAsync(client, new { name = "small int8", dataset = "fashion-mnist", maxImages = 200, quantization = "int8" });
        await Jobs.Jobs.WaitAsync(client, job, Jobs.Jobs.Patience, "succeeded");
        var c = await client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
        Assert.Equal("hnsw", c.GetProperty("index").Str("kind"));
        Assert.Equal("int8", c.GetProperty("index").Str("quantization"));
        var found = 0;
        for (var item = 0; item < 20; item++)
        {
            var top = (await client.PostAsync($"/api/v1/collections/{id}/search?item={item}&k=3", null).JsonAsync()).Items("results")[0];
            if (top.GetProperty("item").GetInt64() == item) found++;
        }
        Assert.True(found >= 18, $"only {found} of 20 items find themselves first in the int8 index");
        using var form = new MultipartFormDataContent();
        form.Add(Http.Part(File.ReadAllBytes(Path.Combine(FixturePaths.RepoRoot, "wwwroot", "samples", "fashion-9-sneaker.png")), "image/png"), "image", "sneaker.png");
        var added = await client.PostAsync($"/api/v1/collections/{id}/images", form).JsonAsync();
        Assert.Equal(201, added.GetProperty("items").GetInt64());
        c = await client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
        Assert.Equal(("hnsw", "int8"), (c.GetProperty("index").Str("kind"), c.GetProperty("index").Str("quantization")));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task A_cancelled_index_job_keeps_the_items_done_and_its_resume_continues_after_them()
    {
        using var host = NewHost();
        using var client = host.CreateClient();
        using var held = new HeldStep(host.DataDirectory, 2);
        var (id, job) = await CollectionsFixture.CreateAsync(client,
            new { name = "cancel me", dataset = "fashion-mnist", maxImages = 100, config = new { batchSize = 20, reportEverySteps = 1, checkpointEverySteps = 50 } });
        await Jobs.Jobs.WaitForStepAsync(client, job, 2, Jobs.Jobs.Patience);
        Assert.Equal("indexing", (await client.GetAsync($"/api/v1/collections/{id}").JsonAsync()).Str("status"));
        Assert.Contains("still being indexed", await client.PostAsync($"/api/v1/collections/{id}/search?item=0", null).ProblemAsync(409));

        await client.PostAsync($"/api/v1/jobs/{job}/cancel", null).JsonAsync(HttpStatusCode.Accepted);
        var cancelled = await Jobs.Jobs.WaitAsync(client, job, Jobs.Jobs.Patience, "cancelled");
        Assert.Single(cancelled.Items("checkpoints"));
        var c = await client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
        Assert.Equal("cancelled", c.Str("status"));
        Assert.Equal(40, c.GetProperty("items").GetInt64());   // the two steps done, committed by the cancel (no checkpoint was due)
        Assert.Contains("cancelled after 40 of 100", await client.PostAsync($"/api/v1/collections/{id}/search?item=0", null).ProblemAsync(409));

        held.Release();
        await client.PostAsync($"/api/v1/jobs/{job}/resume", null).JsonAsync(HttpStatusCode.Accepted);
        var done = await Jobs.Jobs.WaitAsync(client, job, Jobs.Jobs.Patience, "succeeded");
        Assert.Equal(2, done.Int("runs"));
        Assert.Equal(100, done.GetProperty("result").Int("items"));
        c = await client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
        Assert.Equal("ready", c.Str("status"));
        Assert.Equal(100, c.GetProperty("items").GetInt64());
        Assert.Equal(100, c.GetProperty("indexed").GetInt64());
        // Every dataset image once, in order: item i is dataset image i.
        foreach (var item in new[] { 0, 39, 40, 41, 99 })
            Assert.Equal(item, (await client.GetAsync($"/api/v1/collections/{id}/items/{item}").JsonAsync()).Int("datasetIndex"));
        var self = await client.PostAsync($"/api/v1/collections/{id}/search?item=40&k=1", null).JsonAsync();
        Assert.Equal(40, self.Items("results")[0].GetProperty("item").GetInt64());
        // Without a tokenizer there are no codes.
        Assert.Contains("without a tokenizer", await client.GetAsync($"/api/v1/collections/{id}/codes").ProblemAsync(409));
        var tokenizer = host.Registry.DefaultId("tokenizer");
        Assert.Contains("without a tokenizer", await client.GetAsync($"/api/v1/models/{tokenizer}/codebook/1?collection={id}").ProblemAsync(409));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task A_collection_whose_job_failed_answers_409_with_the_jobs_error()
    {
        using var host = NewHost();
        using var client = host.CreateClient();
        var model = host.Seed(EvaluateJobTests.TinyClassifier(), "short-lived classifier", EvaluateJobTests.FashionClasses);
        Assert.False(model.IsDefault);
        using var held = new HeldStep(host.DataDirectory, 1);
        var (id, job) = await CollectionsFixture.CreateAsync(client,
            new { name = "doomed", dataset = "fashion-mnist", embeddingModel = model.Id, maxImages = 40, config = new { batchSize = 10, reportEverySteps = 1 } });
        await Jobs.Jobs.WaitForStepAsync(client, job, 1, Jobs.Jobs.Patience);
        (await client.DeleteAsync($"/api/v1/models/{model.Id}")).EnsureSuccessStatusCode();   // the embedding model goes mid-job
        held.Release();
        var failed = await Jobs.Jobs.WaitAsync(client, job, Jobs.Jobs.Patience, "failed");
        var error = failed.Str("error");
        Assert.Contains(model.Id, error);

        var c = await client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
        Assert.Equal("failed", c.Str("status"));
        Assert.Equal(error, c.Str("error"));
        var search = await client.PostAsync($"/api/v1/collections/{id}/search?item=0", null).ProblemAsync(409);
        Assert.Contains(error, search);
        var image = Http.Images(await File.ReadAllBytesAsync(CollectionsFixture.Sample("fashion-9-sneaker.png")));
        Assert.Contains(error, await client.PostAsync($"/api/v1/collections/{id}/images", image).ProblemAsync(409));
    }

    [Fact]
    public async Task Deleting_a_collection_cancels_its_job_and_frees_its_folder()
    {
        using var host = NewHost();
        using var client = host.CreateClient();
        using var held = new HeldStep(host.DataDirectory, 1);
        var (id, job) = await CollectionsFixture.CreateAsync(client,
            new { name = "short lived", dataset = "fashion-mnist", maxImages = 40, config = new { batchSize = 10, reportEverySteps = 1, checkpointEverySteps = 1 } });
        await Jobs.Jobs.WaitForStepAsync(client, job, 1, Jobs.Jobs.Patience);
        var folder = Path.Combine(host.DataDirectory, "collections", id);
        var c = await client.GetAsync($"/api/v1/collections/{id}").JsonAsync();
        Assert.True(c.GetProperty("diskBytes").GetInt64() > 0);
        Assert.True(Directory.Exists(folder));

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync($"/api/v1/collections/{id}")).StatusCode);
        Assert.False(Directory.Exists(folder));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(host.DataDirectory, "collections")));
        await client.GetAsync($"/api/v1/collections/{id}").ProblemAsync(404);
        await Jobs.Jobs.WaitAsync(client, job, Jobs.Jobs.Patience, "cancelled");
        Assert.Empty((await client.GetAsync("/api/v1/collections").JsonAsync()).EnumerateArray());
        host.AssertNoServerErrors();
    }
}
