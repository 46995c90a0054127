using System.Diagnostics;
using System.Globalization;
using System.Net;
using BeitV2.Ml.Models;
using BeitV2.Web.Inference;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// Dynamic batching across concurrent requests (Inference:MaxBatch, MaxWaitMs); back-pressure is in
/// <see cref="RateLimitingTests"/>.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class BatchingTests
{
    [Fact]
    public async Task ConcurrentSingleImageRequests_ShareForwardPasses()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Inference:MaxBatch"] = "8", ["Inference:MaxWaitMs"] = "200" });
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "batched");
        using var client = host.CreateClient();
        var worker = await host.Services.GetRequiredService<ModelHost>().GetAsync(info);   // loaded before the burst
        var (countBefore, sumBefore) = await BatchSizeMetric(client);

        var images = Enumerable.Range(0, 8).Select(i => TestImages.Png(48, 40, seed: i)).ToArray();
        var concurrent = await Task.WhenAll(images.Select(image => client.PostAsync("/api/v1/classify", Http.Images(image)).JsonAsync()));

        var sizes = worker.RecentBatchSizes;
        Assert.Equal(8, sizes.Sum());
        Assert.All(sizes, s => Assert.InRange(s, 1, 8));
        Assert.Contains(sizes, s => s > 1);
        // The Prometheus histogram saw the same passes: fewer observations than images.
        var (countAfter, sumAfter) = await BatchSizeMetric(client);
        Assert.Equal(sizes.Count, countAfter - countBefore);
        Assert.Equal(8, sumAfter - sumBefore);

        // Each request got its own image's answer: the same as all eight sent in one request.
        var together = await client.PostAsync("/api/v1/classify", Http.Images(images)).JsonAsync();
        for (var i = 0; i < images.Length; i++)
        {
            var alone = Probabilities(concurrent[i].Items("images")[0]);
            var batched = Probabilities(together.Items("images")[i]);
            for (var k = 0; k < alone.Length; k++) Assert.True(Math.Abs(alone[k] - batched[k]) <= 1e-5, $"request {i}, class {k}: {alone[k]} vs {batched[k]}");
        }
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task MaxBatchOne_RunsEveryImageAlone()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Inference:MaxBatch"] = "1", ["Inference:MaxWaitMs"] = "200" });
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "unbatched");
        using var client = host.CreateClient();
        var worker = await host.Services.GetRequiredService<ModelHost>().GetAsync(info);

        var images = Enumerable.Range(0, 4).Select(i => TestImages.Png(48, 40, seed: i)).ToArray();
        await Task.WhenAll(images.Select(image => client.PostAsync("/api/v1/classify", Http.Images(image)).JsonAsync()));
        await client.PostAsync("/api/v1/classify", Http.Images(images)).JsonAsync();

        Assert.Equal(Enumerable.Repeat(1, 8), worker.RecentBatchSizes);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task RequestsStillBeingDecoded_AreWaitedFor_AndShareTheBatch()
    {
        // MaxWaitMs 0: nothing waits for requests the server has not seen. One request that is "being decoded"
        // (held on the arrival board) makes the first image wait, and the next image joins its batch.
        using var host = new ApiHost(new Dictionary<string, string?>
        {
            ["Inference:MaxBatch"] = "2", ["Inference:MaxWaitMs"] = "0", ["Inference:MaxGatherMs"] = "20000",
        });
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "gather");
        using var client = host.CreateClient();
        var worker = await host.Services.GetRequiredService<ModelHost>().GetAsync(info);
        var arriving = host.Services.GetRequiredService<ArrivingRequests>();

        Task<HttpResponseMessage> first, second;
        using (arriving.Enter(info.Id))
        {
            first = client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(48, 40, seed: 1)));
            await Task.Delay(300);
            Assert.False(first.IsCompleted, "the first image ran although another request was announced");
            second = client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(48, 40, seed: 2)));
            await Task.WhenAll(first, second);   // MaxBatch 2 closes the batch without the announced one
        }
        await (await first).JsonAsync();
        await (await second).JsonAsync();
        Assert.Equal(new[] { 2 }, worker.RecentBatchSizes);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task LoneRequest_DoesNotWaitForTheGatherWindow()
    {
        using var host = new ApiHost(new Dictionary<string, string?>
        {
            // A 10-minute window against a 2-minute bound: a slow machine cannot be mistaken for a wait.
            ["Inference:MaxBatch"] = "8", ["Inference:MaxWaitMs"] = "0", ["Inference:MaxGatherMs"] = "600000",
        });
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "lone");
        using var client = host.CreateClient();
        var worker = await host.Services.GetRequiredService<ModelHost>().GetAsync(info);

        var clock = Stopwatch.StartNew();
        await client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(48, 40, seed: 3))).JsonAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"a lone request took {clock.Elapsed.TotalSeconds:0.0} s: it waited for the 10 min gather window");
        Assert.Equal(new[] { 1 }, worker.RecentBatchSizes);
        Assert.Equal(0, host.Services.GetRequiredService<ArrivingRequests>().Count(info.Id));
        host.AssertNoServerErrors();
    }

    private static float[] Probabilities(System.Text.Json.JsonElement image) =>
        image.Items("predictions").OrderBy(p => p.Int("classIndex")).Select(p => p.GetProperty("probability").GetSingle()).ToArray();

    private static async Task<(double Count, double Sum)> BatchSizeMetric(HttpClient client) =>
        (await MetricValue(client, "beitv2_inference_batch_size_count{operation=\"classify\"}"),
         await MetricValue(client, "beitv2_inference_batch_size_sum{operation=\"classify\"}"));

    /// <summary>A sample of the Prometheus text exposition (0 when absent: a labelled series starts at its first observation).</summary>
    internal static async Task<double> MetricValue(HttpClient client, string series)
    {
        var text = await client.GetStringAsync("/metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(series.Length + 1)..].Trim(), CultureInfo.InvariantCulture);
    }
}
