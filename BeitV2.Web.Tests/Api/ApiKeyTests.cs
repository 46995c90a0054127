using System.Net;
using System.Net.Http.Headers;
using BeitV2.Ml.Models;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// Security:ApiKey guards every API route (X-Api-Key or Authorization: Bearer), inference included
/// unless Security:AnonymousInference=true; health stays open. (SecurityTests covers every route.)
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ApiKeyTests
{
    private const string Key = "s3cret-key";

    [Fact]
    public async Task StateChangingRoutes_NeedTheKey()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key });
        var first = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "first");
        var second = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "second");
        using var client = host.CreateClient();

        // Import.
        var missing = await client.SendAsync(Import()).ProblemAsync(401);
        Assert.Contains("X-Api-Key", missing);
        var wrong = await client.SendAsync(Import(r => r.Headers.Add("X-Api-Key", "not-the-key"))).ProblemAsync(401);
        Assert.Contains("wrong", wrong);
        await client.SendAsync(Import(r => r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Key))).ProblemAsync(401);
        var imported = await client.SendAsync(Import(r => r.Headers.Add("X-Api-Key", Key))).JsonAsync(HttpStatusCode.Created);
        await client.SendAsync(Import(r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key))).JsonAsync(HttpStatusCode.Created);
        Assert.Empty(host.TempFiles());

        // Set default.
        await client.PostAsync($"/api/v1/models/{second.Id}/default", null).ProblemAsync(401);
        Assert.True(host.Registry.Get(first.Id).IsDefault);
        await client.SendAsync(Send(HttpMethod.Post, $"/api/v1/models/{second.Id}/default", r => r.Headers.Add("X-Api-Key", Key))).JsonAsync();
        Assert.True(host.Registry.Get(second.Id).IsDefault);

        // Delete.
        var importedId = imported.GetProperty("model").Str("id");
        await client.DeleteAsync($"/api/v1/models/{first.Id}").ProblemAsync(401);
        await client.SendAsync(Send(HttpMethod.Delete, $"/api/v1/models/{importedId}", r => r.Headers.Add("X-Api-Key", "nope"))).ProblemAsync(401);
        Assert.NotNull(host.Registry.Find(first.Id));
        using (var deleted = await client.SendAsync(Send(HttpMethod.Delete, $"/api/v1/models/{first.Id}",
                   r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key))))
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Null(host.Registry.Find(first.Id));

        // Inference and reads need the key too.
        await client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage)).ProblemAsync(401);
        await client.GetAsync("/api/v1/models").ProblemAsync(401);
        Assert.Equal(second.Id, (await client.SendAsync(Send(HttpMethod.Post, "/api/v1/classify", r => r.Headers.Add("X-Api-Key", Key), Http.Images(SeededApi.SmallImage))).JsonAsync()).Str("model"));
        await client.SendAsync(Send(HttpMethod.Get, "/api/v1/models", r => r.Headers.Add("X-Api-Key", Key))).JsonAsync();
        await AssertOpenAsync(client);
        host.AssertNoServerErrors();
    }

    [Theory]
    [InlineData(null)]
    [InlineData("true")] // the deprecated Security:RequireKeyForInference=true is the default now
    public async Task WithAKey_InferenceNeedsIt(string? requireKeyForInference)
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key, ["Security:RequireKeyForInference"] = requireKeyForInference });
        var model = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "guarded");
        using var client = host.CreateClient();

        foreach (var route in new[] { "classify", "embeddings", "tokens", "segment" })
            await client.PostAsync($"/api/v1/{route}", Http.Images(SeededApi.SmallImage)).ProblemAsync(401);
        await client.SendAsync(Send(HttpMethod.Post, "/api/v1/classify", r => r.Headers.Add("X-Api-Key", "wrong"), Http.Images(SeededApi.SmallImage))).ProblemAsync(401);

        var withHeader = await client.SendAsync(Send(HttpMethod.Post, "/api/v1/classify", r => r.Headers.Add("X-Api-Key", Key), Http.Images(SeededApi.SmallImage))).JsonAsync();
        Assert.Equal(model.Id, withHeader.Str("model"));
        var withBearer = await client.SendAsync(Send(HttpMethod.Post, "/api/v1/embeddings",
            r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key), Http.Images(SeededApi.SmallImage))).JsonAsync();
        Assert.Equal(model.Id, withBearer.Str("model"));

        await AssertOpenAsync(client);
        host.AssertNoServerErrors();
    }

    [Theory]
    [InlineData("Security:AnonymousInference", "true")]
    [InlineData("Security:RequireKeyForInference", "false")] // the deprecated alias
    public async Task AnonymousInference_OpensInferenceOnly(string setting, string value)
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key, [setting] = value });
        var model = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "public");
        using var client = host.CreateClient();

        Assert.Equal(model.Id, (await client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage)).JsonAsync()).Str("model"));
        await client.GetAsync("/api/v1/models").ProblemAsync(401);
        await client.DeleteAsync($"/api/v1/models/{model.Id}").ProblemAsync(401);
        Assert.NotNull(host.Registry.Find(model.Id));
        host.AssertNoServerErrors();
    }

    /// <summary>Health answers without a key; metrics, the service description and the OpenAPI document do not.</summary>
    private static async Task AssertOpenAsync(HttpClient client)
    {
        foreach (var route in new[] { "/metrics", "/api/v1/info", "/swagger/v1/swagger.json" })
            await client.GetAsync(route).ProblemAsync(401);
        foreach (var route in new[] { "/health/live" })
        {
            using var r = await client.GetAsync(route);
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"{route}: {(int)r.StatusCode}");
        }
        // Not every kind is registered here, so readiness says 503 -- but it answers, without a key.
        using var ready = await client.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.NotEmpty((await ready.JsonAsync(HttpStatusCode.ServiceUnavailable)).Items("missingModels"));
    }

    private static HttpRequestMessage Import(Action<HttpRequestMessage>? auth = null)
    {
        var form = new MultipartFormDataContent();
        form.Add(new StringContent("classifier"), "kind");
        form.Add(Http.Part(File.ReadAllBytes(Path.Combine(FixturePaths.ReferenceDir, "vit_cls.pth")), "application/octet-stream"), "file", "vit_cls.pth");
        return Send(HttpMethod.Post, "/api/v1/models/import", auth, form);
    }

    private static HttpRequestMessage Send(HttpMethod method, string url, Action<HttpRequestMessage>? auth, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = content };
        auth?.Invoke(request);
        return request;
    }
}
