using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Configuration;
using BeitV2.Web.Inference;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// A service with the default image limits (40 MP per image, 64 MP per request, 1:100) and a small decode
/// budget, with one tiny model per inference route.
/// </summary>
public sealed class PixelBudgetApi : IDisposable
{
    public const long DecodeBytes = 1_000_000;

    public PixelBudgetApi()
    {
        Host = new ApiHost(new Dictionary<string, string?>
        {
            ["Limits:MaxDecodeBytes"] = DecodeBytes.ToString(),
            ["Limits:DecodeQueueTimeoutMs"] = "600000",
        });
        Host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "micro classifier");
        Host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)), "micro backbone");
        Host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "micro tokenizer");
        Host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4)), "micro segmenter");
        Client = Host.CreateClient();
    }

    public ApiHost Host { get; }
    public HttpClient Client { get; }
    public DecodeBudget Budget => Host.Services.GetRequiredService<DecodeBudget>();
    public LimitsOptions Limits => Host.Services.GetRequiredService<IOptions<LimitsOptions>>().Value;

    public void Dispose()
    {
        Client.Dispose();
        Host.Dispose();
    }
}

/// <summary>
/// Memory per request is bounded: the request's pixels are budgeted from the headers before
/// anything is decoded, decoding shares a process-wide byte budget (queue, then 429), and thin images are
/// refused with 422 on every route and output format instead of overflowing.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class PixelBudgetTests(PixelBudgetApi api) : IClassFixture<PixelBudgetApi>
{
    [Fact]
    public async Task RequestOverThePixelBudget_Is413_BeforeAnyImageIsDecoded()
    {
        // 2 × 36 MP = 72 MP > 64 MP; each alone is within the 40 MP image limit. The files carry one byte of
        // pixel data: had either been decoded, the answer would be 400 "truncated", not 413.
        var bomb = CraftedImages.PngWithShortIdat(6000, 6000);
        var detail = await api.Client.PostAsync("/api/v1/classify", Http.Images(bomb, bomb)).ProblemAsync(413);
        Assert.Contains("MaxPixelsPerRequest", detail);
        Assert.Contains("72000000", detail);
        Assert.Equal(api.Budget.Capacity, api.Budget.Available);
        api.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task APixelFloodImageWithinTheBudget_IsRefusedAsTruncated()
    {
        var detail = await api.Client.PostAsync("/api/v1/classify", Http.Images(CraftedImages.PngWithShortIdat(6000, 6000))).ProblemAsync(400);
        Assert.Contains("truncated", detail);
        Assert.Equal(api.Budget.Capacity, api.Budget.Available);
    }

    public static TheoryData<string, int, int> ThinCases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var route in new[] { "segment", "classify", "tokens", "embeddings", "tokens?format=png", "segment?format=png", "segment?format=overlay" })
        {
            data.Add(route, 1, 40_000_000);
            data.Add(route, 4, 10_000_000);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(ThinCases))]
    public async Task ThinImages_Are422OnEveryRoute(string route, int width, int height)
    {
        var detail = await api.Client.PostAsync("/api/v1/" + route, Http.Images(ThinPng(width, height))).ProblemAsync(422);
        Assert.Contains($"{width}x{height}", detail);
        Assert.Contains("1:100", detail);
        api.Host.AssertNoServerErrors();
    }

    [Theory]
    [InlineData("segment")]
    [InlineData("segment?format=png")]
    [InlineData("segment?format=overlay")]
    [InlineData("classify")]
    [InlineData("tokens?format=png")]
    public async Task AThinImageWithinTheRatio_IsServed(string route)
    {
        using var response = await api.Client.PostAsync("/api/v1/" + route, Http.Images(TestImages.Png(3, 300)));
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        if (route == "segment")
        {
            var image = (await response.JsonAsync()).Items("images")[0];
            Assert.Equal((3, 300), (image.Int("width"), image.Int("height")));
        }
    }

    [Fact]
    public async Task WhenTheDecodeBudgetIsTaken_ARequestQueues_ThenIsServed()
    {
        var hold = await api.Budget.AcquireAsync(api.Budget.Capacity, CancellationToken.None);
        Task<HttpResponseMessage> request;
        try
        {
            request = api.Client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage));
            await WaitUntil(() => api.Budget.Waiting == 1 || request.IsCompleted);
            Assert.False(request.IsCompleted, "the request was answered while the decode budget was taken");
        }
        finally
        {
            hold.Dispose();
        }
        using var response = await request;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(api.Budget.Capacity, api.Budget.Available);
    }

    [Fact]
    public async Task WhenTheDecodeBudgetStaysTaken_ARequestGets429WithRetryAfter()
    {
        var limits = api.Limits;
        var timeout = limits.DecodeQueueTimeoutMs;
        limits.DecodeQueueTimeoutMs = 0;   // refuse at once instead of waiting: deterministic
        var hold = await api.Budget.AcquireAsync(api.Budget.Capacity, CancellationToken.None);
        try
        {
            using var response = await api.Client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage));
            Assert.NotNull(response.Headers.RetryAfter);
            var detail = await response.ProblemAsync(429);
            Assert.Contains("MaxDecodeBytes", detail);
            Assert.Equal(0, api.Budget.Waiting);
        }
        finally
        {
            hold.Dispose();
            limits.DecodeQueueTimeoutMs = timeout;
        }
        Assert.Equal(api.Budget.Capacity, api.Budget.Available);
        using var after = await api.Client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    // Polls a condition the test itself controls (the request cannot get past the held budget), so the wait
    // is not a race with the machine's speed; the bound only stops a broken build from hanging.
    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached");
            await Task.Delay(10);
        }
    }

    /// <summary>A valid 8-bit greyscale PNG of zeros (its pixel data compresses about 1000:1).</summary>
    private static byte[] ThinPng(int width, int height) => ThinPngs.GetOrAdd((width, height), size =>
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, size.Item1);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), size.Item2);
        ihdr[8] = 8;   // 8-bit greyscale
        Chunk(ms, "IHDR", ihdr);
        using (var z = new MemoryStream())
        {
            using (var zl = new ZLibStream(z, CompressionLevel.SmallestSize, leaveOpen: true))
            {
                var rows = new byte[(1 + size.Item1) * 4096];   // filter byte 0 + zero pixels, many rows at a time
                for (long left = (long)size.Item2; left > 0; left -= 4096)
                    zl.Write(rows, 0, (int)Math.Min(left, 4096) * (1 + size.Item1));
            }
            Chunk(ms, "IDAT", z.ToArray());
        }
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    });

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int), byte[]> ThinPngs = new();

    private static void Chunk(Stream s, string type, byte[] payload)
    {
        var head = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(head, payload.Length);
        s.Write(head);
        var typeAndData = System.Text.Encoding.ASCII.GetBytes(type).Concat(payload).ToArray();
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(head, CraftedImages.Crc32(typeAndData));
        s.Write(head);
    }
}
