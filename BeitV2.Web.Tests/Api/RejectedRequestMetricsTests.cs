using System.Text;

namespace BeitV2.Web.Tests.Api;

/// <summary>Every 4xx answer is counted in /metrics as beitv2_requests_rejected_total{route,status}.</summary>
[Collection(ApiCollection.Name)]
public sealed class RejectedRequestMetricsTests(SeededApi api)
{
    [Fact]
    public async Task BadImages_AreCountedByRouteAndStatus()
    {
        const string undecodable = "beitv2_requests_rejected_total{route=\"/api/v1/classify\",status=\"400\"}";
        const string notAnImage = "beitv2_requests_rejected_total{route=\"/api/v1/classify\",status=\"415\"}";
        const string unknownModel = "beitv2_requests_rejected_total{route=\"/api/v1/models/{id}\",status=\"404\"}";
        var before = (await BatchingTests.MetricValue(api.Client, undecodable), await BatchingTests.MetricValue(api.Client, notAnImage),
            await BatchingTests.MetricValue(api.Client, unknownModel));

        var truncated = TestImages.Png(40, 30)[..60];
        await api.Client.PostAsync("/api/v1/classify", Http.Raw(truncated, "image/png")).ProblemAsync(400);
        await api.Client.PostAsync("/api/v1/classify", Http.Raw(Encoding.UTF8.GetBytes("hello"), "text/plain")).ProblemAsync(415);
        await api.Client.PostAsync("/api/v1/classify", Http.Raw(Encoding.UTF8.GetBytes("hello"), "text/plain")).ProblemAsync(415);
        await api.Client.GetAsync("/api/v1/models/no-such-model").ProblemAsync(404);

        Assert.Equal(before.Item1 + 1, await BatchingTests.MetricValue(api.Client, undecodable));
        Assert.Equal(before.Item2 + 2, await BatchingTests.MetricValue(api.Client, notAnImage));
        Assert.Equal(before.Item3 + 1, await BatchingTests.MetricValue(api.Client, unknownModel));
    }
}
