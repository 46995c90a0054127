using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using BeitV2.Ml.Models;
using BeitV2.Web.Inference;
using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// Back-pressure on ASP.NET Core's rate limiter: Inference:MaxInFlight requests run, Inference:MaxQueued
/// wait, the next gets 429 problem+json with Retry-After; RateLimits:PerKeyTokensPerMinute holds each
/// client (API key, else address) to a token bucket. Requests are held in flight by a request body the
/// test has not finished sending (the endpoint holds its permit while it reads), never by timing.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class RateLimitingTests
{
    [Fact]
    public async Task BeyondMaxInFlightAndQueue_429WithRetryAfter_AndTheOthersSucceed()
    {
        using var host = new ApiHost(new Dictionary<string, string?>
        {
            ["Inference:MaxInFlight"] = "2",
            ["Inference:MaxQueued"] = "1",
        });
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "limited");
        // The TestServer's own client: the factory's default client buffers request bodies (to replay redirects).
        using var client = host.Server.CreateClient();
        await host.Services.GetRequiredService<ModelHost>().GetAsync(info);
        var concurrency = host.Services.GetRequiredService<InferenceConcurrency>();
        var rejectedBefore = await BatchingTests.MetricValue(client, "beitv2_inference_requests_total{operation=\"any\",outcome=\"rejected\"}");

        var bodies = Enumerable.Range(0, 3).Select(i => new HeldImageBody(TestImages.Png(40, 40, i))).ToArray();
        var first = client.PostAsync("/api/v1/classify", bodies[0]);
        var second = client.PostAsync("/api/v1/embeddings", bodies[1]);
        await WaitUntil(() => concurrency.InFlight == 2, () => $"{concurrency.InFlight} in flight");
        var queued = client.PostAsync("/api/v1/classify", bodies[2]);
        await WaitUntil(() => concurrency.Queued == 1, () => $"{concurrency.Queued} queued");

        using (var refused = await client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(40, 40, 3))))
        {
            var detail = await refused.ProblemAsync(429);
            Assert.Contains("MaxInFlight", detail);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.True(refused.Headers.RetryAfter!.Delta > TimeSpan.Zero);
        }
        Assert.Equal(2, concurrency.InFlight);
        Assert.False(first.IsCompleted || second.IsCompleted || queued.IsCompleted);

        foreach (var body in bodies) body.Release();
        await (await first).JsonAsync();
        await (await second).JsonAsync();
        await (await queued).JsonAsync();
        Assert.Equal(0, concurrency.InFlight);
        Assert.Equal(rejectedBefore + 1, await BatchingTests.MetricValue(client, "beitv2_inference_requests_total{operation=\"any\",outcome=\"rejected\"}"));
        using (var live = await client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task PerKeyTokenBucket_Exhausted_429WithRetryAfter_OtherKeysUnaffected()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["RateLimits:PerKeyTokensPerMinute"] = "2" });
        host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "bucket");
        using var client = host.CreateClient();

        HttpRequestMessage Classify(string key)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/classify") { Content = Http.Images(SeededApi.SmallImage) };
            request.Headers.Add("X-Api-Key", key);
            return request;
        }

        await (await client.SendAsync(Classify("alice"))).JsonAsync();
        await (await client.SendAsync(Classify("alice"))).JsonAsync();
        using (var refused = await client.SendAsync(Classify("alice")))
        {
            var detail = await refused.ProblemAsync(429);
            Assert.Contains("PerKeyTokensPerMinute", detail);
            Assert.NotNull(refused.Headers.RetryAfter?.Delta);
            Assert.InRange(refused.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60));
        }
        // Another key has its own bucket; health is never limited.
        await (await client.SendAsync(Classify("bob"))).JsonAsync();
        for (var i = 0; i < 5; i++)
            using (var live = await client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        host.AssertNoServerErrors();
    }

    private static async Task WaitUntil(Func<bool> condition, Func<string> state)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60), "gave up waiting: " + state());
            await Task.Delay(10);
        }
    }

    /// <summary>A raw PNG body (no Content-Length) whose second half is sent only after <see cref="Release"/>.</summary>
    private sealed class HeldImageBody : HttpContent
    {
        private readonly byte[] image;
        private readonly TaskCompletionSource gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public HeldImageBody(byte[] image)
        {
            this.image = image;
            Headers.ContentType = new MediaTypeHeaderValue("image/png");
        }

        public void Release() => gate.TrySetResult();

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = image.Length / 2;
            await stream.WriteAsync(image.AsMemory(0, half));
            await stream.FlushAsync();
            await gate.Task;
            await stream.WriteAsync(image.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
