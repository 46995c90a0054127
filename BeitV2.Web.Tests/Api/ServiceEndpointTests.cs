using System.Net;
using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;

namespace BeitV2.Web.Tests.Api;

/// <summary>Health, readiness, /api/v1/info, /metrics and the OpenAPI document.</summary>
[Collection(ApiCollection.Name)]
public sealed class ServiceEndpointTests(SeededApi api)
{
    [Fact]
    public async Task Live_Is200()
    {
        var json = await api.Client.GetAsync("/health/live").JsonAsync();
        Assert.Equal("live", json.Str("status"));
    }

    [Fact]
    public async Task Ready_IsReadyWhenEveryKindHasADefault()
    {
        var json = await api.Client.GetAsync("/health/ready").JsonAsync();
        Assert.Equal("ready", json.Str("status"));
        Assert.Empty(json.Items("missingModels"));
    }

    /// <summary>
    /// An empty service: readiness names every missing kind and inference answers 503 saying how to
    /// import; registering a tokenizer, a classifier (which also serves embeddings) and a segmenter
    /// makes it ready.
    /// </summary>
    [Fact]
    public async Task WithoutModels_NotReady_And503SayingHowToImport()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();

        var missing = await MissingKinds(client);
        Assert.Equal(new[] { "backbone or classifier or pretrain", "classifier", "segmenter", "tokenizer" }, missing.Order());
        foreach (var route in new[] { "tokens", "embeddings", "classify", "segment" })
        {
            var detail = await client.PostAsync($"/api/v1/{route}", Http.Images(SeededApi.SmallImage)).ProblemAsync(503);
            Assert.Contains("POST /api/v1/models/import", detail);
        }
        using (var live = await client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);

        host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "tokenizer");
        Assert.Equal(new[] { "backbone or classifier or pretrain", "classifier", "segmenter" }, (await MissingKinds(client)).Order());
        host.Seed(new BeitMim(MimConfig.Micro()), "mim");
        Assert.Equal(new[] { "classifier", "segmenter" }, (await MissingKinds(client)).Order());
        host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "classifier");
        host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4)), "segmenter");
        var ready = await client.GetAsync("/health/ready").JsonAsync();
        Assert.Equal("ready", ready.Str("status"));
        Assert.Empty(ready.Items("missingModels"));

        // A valid request works now, and nothing was staged in the data directory by the failures.
        await client.PostAsync("/api/v1/tokens", Http.Images(SeededApi.SmallImage)).JsonAsync();
        Assert.Empty(host.TempFiles());
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Info_ListsDefaultsDeviceAndLimits()
    {
        var info = await api.Client.GetAsync("/api/v1/info").JsonAsync();

        Assert.Equal("cpu", info.Str("device"));
        Assert.False(string.IsNullOrEmpty(info.Str("version")));
        var defaults = info.GetProperty("defaultModels");
        Assert.Equal(api.Classifier.Id, defaults.Str("classifier"));
        Assert.Equal(api.Backbone.Id, defaults.Str("backbone"));
        Assert.Equal(api.Tokenizer.Id, defaults.Str("tokenizer"));
        Assert.Equal(api.Segmenter.Id, defaults.Str("segmenter"));
        Assert.Equal(api.Pretrain.Id, defaults.Str("pretrain"));
        Assert.Empty(info.Items("missingModels"));
        var limits = info.GetProperty("limits");
        Assert.Equal(SeededApi.MaxUploadBytes, limits.GetProperty("maxUploadBytes").GetInt64());
        Assert.Equal(SeededApi.MaxImagePixels, limits.GetProperty("maxImagePixels").GetInt64());
        Assert.Equal(SeededApi.MaxImagesPerRequest, limits.Int("maxImagesPerRequest"));
        Assert.True(info.GetProperty("inference").Int("maxBatch") > 0);
    }

    [Fact]
    public async Task Metrics_ExposeInferenceAndHttpCounters()
    {
        await api.Client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage)).JsonAsync();

        using var response = await api.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("beitv2_inference_requests_total{operation=\"classify\",outcome=\"ok\"}", text);
        foreach (var name in new[] { "beitv2_inference_batch_size", "beitv2_inference_queue_seconds", "beitv2_inference_compute_seconds",
                     "http_requests_received_total", "http_request_duration_seconds" })
            Assert.Contains($"# TYPE {name} ", text);
        Assert.Contains("endpoint=\"/api/v1/classify\"", text);
    }

    [Fact]
    public async Task Swagger_DescribesClassifyWithAMultipartBody()
    {
        using var response = await api.Client.GetAsync("/swagger/v1/swagger.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = doc.RootElement.GetProperty("paths");

        var classify = paths.GetProperty("/api/v1/classify").GetProperty("post");
        var body = classify.GetProperty("requestBody").GetProperty("content");
        var multipart = body.GetProperty("multipart/form-data").GetProperty("schema");
        Assert.Equal("array", multipart.GetProperty("properties").GetProperty("image").GetProperty("type").GetString());
        Assert.True(body.TryGetProperty("image/jpeg", out _));
        Assert.Contains(classify.GetProperty("parameters").EnumerateArray(), p => p.Str("name") == "topK");
        Assert.True(classify.GetProperty("responses").TryGetProperty("200", out _));

        foreach (var route in new[] { "/api/v1/tokens", "/api/v1/embeddings", "/api/v1/segment", "/api/v1/models", "/api/v1/models/{id}", "/health/ready", "/api/v1/info" })
            Assert.True(paths.TryGetProperty(route, out _), $"no {route} in the OpenAPI document");
        var import = paths.GetProperty("/api/v1/models/import").GetProperty("post").GetProperty("requestBody").GetProperty("content");
        Assert.True(import.TryGetProperty("multipart/form-data", out _));
    }

    private static async Task<string[]> MissingKinds(HttpClient client)
    {
        using var response = await client.GetAsync("/health/ready");
        var json = await response.JsonAsync(HttpStatusCode.ServiceUnavailable);
        Assert.Equal("missing-models", json.Str("status"));
        var missing = json.Items("missingModels");
        Assert.All(missing, m => Assert.Contains("POST /api/v1/models/import", m.Str("howToFix")));
        return missing.Select(m => m.Str("kind")).ToArray();
    }
}
