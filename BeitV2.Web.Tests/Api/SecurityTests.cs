using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using BeitV2.Web.Infrastructure;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// With an API key set, every API route (taken from the app's own endpoint data source, so a route
/// added later is covered without editing this test), the SignalR hub, /metrics and Swagger need it;
/// health and the static UI do not. Security headers are on every kind of response.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class SecurityTests
{
    private const string Key = "the-right-key";
    private const string OtherKey = "a-second-key";

    /// <summary>The inference routes of the contract: the only ones Security:AnonymousInference opens.</summary>
    private static readonly string[] InferenceRoutes = ["POST /api/v1/tokens", "POST /api/v1/embeddings", "POST /api/v1/classify", "POST /api/v1/segment"];

    [Fact]
    public async Task WithAKey_EveryApiRoute_Answers401WithoutIt_AndNot401WithIt()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key, ["Security:ApiKeys:0"] = OtherKey });
        using var client = host.CreateClient();
        var routes = ApiRoutes(host);
        Assert.True(routes.Count >= 15, "too few API routes found: " + string.Join(", ", routes));
        foreach (var route in InferenceRoutes) Assert.Contains(route, routes);

        foreach (var route in routes)
        {
            using (var none = await client.SendAsync(Request(route)))
            {
                var detail = await none.ProblemAsync(401);
                Assert.Contains("X-Api-Key", detail);
                Assert.Contains("Bearer", detail);
                Assert.Contains(none.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
            }
            using (var wrong = await client.SendAsync(Request(route, r => r.Headers.Add("X-Api-Key", Key + "x"))))
                Assert.Contains("wrong", await wrong.ProblemAsync(401));
            using (var header = await client.SendAsync(Request(route, r => r.Headers.Add("X-Api-Key", Key))))
                Assert.True(header.StatusCode != HttpStatusCode.Unauthorized, $"{route} with X-Api-Key: 401");
            using (var bearer = await client.SendAsync(Request(route, r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", OtherKey))))
                Assert.True(bearer.StatusCode != HttpStatusCode.Unauthorized, $"{route} with the second key as Bearer: 401");
            // The query parameter is for the hub's WebSockets only: a key in an API URL would end up in logs.
            using (var query = await client.SendAsync(Request(route, url: u => u + "?access_token=" + Key)))
                Assert.Equal(HttpStatusCode.Unauthorized, query.StatusCode);
        }
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task AnonymousInference_OpensExactlyTheInferenceRoutes()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key, ["Security:AnonymousInference"] = "true" });
        using var client = host.CreateClient();
        var open = new List<string>();
        foreach (var route in ApiRoutes(host))
        {
            using var r = await client.SendAsync(Request(route));
            if (r.StatusCode != HttpStatusCode.Unauthorized) open.Add(route);
        }
        Assert.Equal(InferenceRoutes.Order(), open.Order());
        await AssertStatusAsync(client, "/metrics", HttpStatusCode.Unauthorized);
        using (var negotiate = await client.PostAsync("/hubs/training/negotiate?negotiateVersion=1", null))
            Assert.Equal(HttpStatusCode.Unauthorized, negotiate.StatusCode);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task WithAKey_MetricsSwaggerAndHubNeedIt_HealthAndUiDoNot()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key });
        using var client = host.CreateClient();

        foreach (var path in new[] { "/metrics", "/swagger/v1/swagger.json", "/swagger/index.html" })
        {
            using (var none = await client.GetAsync(path)) await none.ProblemAsync(401);
            using var keyed = await client.SendAsync(Request("GET " + path, r => r.Headers.Add("X-Api-Key", Key)));
            Assert.True(keyed.StatusCode == HttpStatusCode.OK, $"{path} with the key: {(int)keyed.StatusCode}");
        }
        await AssertStatusAsync(client, "/health/live", HttpStatusCode.OK);
        await AssertStatusAsync(client, "/health/ready", HttpStatusCode.ServiceUnavailable); // no models: answers, without a key
        foreach (var path in new[] { "/", "/index.html", "/js/app.js", "/js/api.js", "/css/app.css" })
            await AssertStatusAsync(client, path, HttpStatusCode.OK);

        // The hub: negotiate needs the key, from a header or the access_token query parameter.
        using (var negotiate = await client.PostAsync("/hubs/training/negotiate?negotiateVersion=1", null))
        {
            var detail = await negotiate.ProblemAsync(401);
            Assert.Contains("access_token", detail);
        }
        using (var negotiate = await client.PostAsync($"/hubs/training/negotiate?negotiateVersion=1&access_token={Key}x", null))
            await negotiate.ProblemAsync(401);
        using (var negotiate = await client.PostAsync($"/hubs/training/negotiate?negotiateVersion=1&access_token={Key}", null))
            Assert.Equal(HttpStatusCode.OK, negotiate.StatusCode);

        // A whole connection (negotiate, transport, a hub call) with the key in the URL, in a header, as a bearer token.
        await ConnectAsync(host, url: $"/hubs/training?access_token={Key}");
        await ConnectAsync(host, configure: o => o.Headers["X-Api-Key"] = Key);
        await ConnectAsync(host, configure: o => o.AccessTokenProvider = () => Task.FromResult<string?>(Key));
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(host));
        Assert.Contains("401", refused.Message);
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task WithoutAKey_EverythingIsOpen()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        foreach (var route in ApiRoutes(host))
        {
            using var r = await client.SendAsync(Request(route));
            Assert.True(r.StatusCode != HttpStatusCode.Unauthorized, $"{route}: 401 without any key configured");
        }
        await AssertStatusAsync(client, "/metrics", HttpStatusCode.OK);
        await AssertStatusAsync(client, "/swagger/index.html", HttpStatusCode.OK);
        await ConnectAsync(host);
    }

    [Fact]
    public async Task SecurityHeaders_OnEveryKindOfResponse()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Security:ApiKey"] = Key });
        using var client = host.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", Key);
        using var anonymous = host.CreateClient();

        await AssertHeadersAsync(await client.GetAsync("/health/live"), HttpStatusCode.OK);
        await AssertHeadersAsync(await client.GetAsync("/api/v1/models"), HttpStatusCode.OK);
        await AssertHeadersAsync(await client.GetAsync("/api/v1/models/no-such-model"), HttpStatusCode.NotFound);
        await AssertHeadersAsync(await client.GetAsync("/no/such/file.txt"), HttpStatusCode.NotFound);
        await AssertHeadersAsync(await client.PostAsync("/api/v1/classify", new ByteArrayContent([1, 2, 3])), HttpStatusCode.ServiceUnavailable); // from the exception handler
        await AssertHeadersAsync(await anonymous.GetAsync("/api/v1/models"), HttpStatusCode.Unauthorized);
        await AssertHeadersAsync(await anonymous.GetAsync("/js/app.js"), HttpStatusCode.OK);
        await AssertHeadersAsync(await anonymous.GetAsync("/"), HttpStatusCode.OK);

        // The UI's policy: no inline script or style anywhere.
        using (var page = await anonymous.GetAsync("/"))
        {
            var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
            Assert.DoesNotContain("unsafe-inline", csp);
            Assert.DoesNotContain("unsafe-eval", csp);
            Assert.Contains("script-src 'self'", csp);
            // ...which the page respects: no inline script, event handler or style attribute.
            var html = await page.Content.ReadAsStringAsync();
            Assert.DoesNotMatch(new Regex(@"<script(?![^>]*\bsrc=)[^>]*>", RegexOptions.IgnoreCase), html);
            Assert.DoesNotMatch(new Regex(@"\son[a-z]+\s*=", RegexOptions.IgnoreCase), html);
            Assert.DoesNotMatch(new Regex(@"\sstyle\s*=|<style", RegexOptions.IgnoreCase), html);
        }

        // Swagger UI's page has inline bootstrap code: its own policy allows that, still same-origin only and unframeable.
        using var swagger = await client.GetAsync("/swagger/index.html");
        await AssertHeadersAsync(swagger, HttpStatusCode.OK, swaggerPolicy: true);
        host.AssertNoServerErrors();
    }

    private static async Task AssertHeadersAsync(HttpResponseMessage response, HttpStatusCode status, bool swaggerPolicy = false)
    {
        using (response)
        {
            var what = $"{response.RequestMessage?.RequestUri?.PathAndQuery} ({(int)response.StatusCode})";
            Assert.True(response.StatusCode == status, $"{what}: expected {(int)status}: {await response.Content.ReadAsStringAsync()}");
            Assert.True(response.Headers.TryGetValues("Content-Security-Policy", out var csp), $"{what}: no Content-Security-Policy");
            var policy = string.Join(";", csp!);
            Assert.Equal(swaggerPolicy ? SecurityHeaders.SwaggerContentSecurityPolicy : SecurityHeaders.ContentSecurityPolicy, policy);
            Assert.Contains("frame-ancestors 'none'", policy);
            Assert.Contains("default-src 'self'", policy);
            Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
            Assert.Equal("DENY", Assert.Single(response.Headers.GetValues("X-Frame-Options")));
            Assert.Equal("no-referrer", Assert.Single(response.Headers.GetValues("Referrer-Policy")));
        }
    }

    /// <summary>"METHOD /pattern" for every endpoint under /api, route parameters filled with plausible values.</summary>
    private static List<string> ApiRoutes(ApiHost host)
    {
        var sources = host.Services.GetRequiredService<IEnumerable<EndpointDataSource>>();
        var routes = new List<string>();
        foreach (var endpoint in sources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>())
        {
            var pattern = endpoint.RoutePattern;
            if (pattern.RawText is null || !pattern.RawText.TrimStart('/').StartsWith("api/", StringComparison.OrdinalIgnoreCase)) continue;
            var path = "/" + string.Join("/", pattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
            {
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart l => l.Content,
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart p =>
                    p.ParameterPolicies.Any(c => c.Content is "int" or "long") ? "0" : "x" + p.Name,
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternSeparatorPart s => s.Content,
                _ => "x",
            }))));
            var methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"];
            routes.AddRange(methods.Select(m => $"{m} {path}"));
        }
        return routes.Distinct().ToList();
    }

    private static HttpRequestMessage Request(string route, Action<HttpRequestMessage>? auth = null, Func<string, string>? url = null)
    {
        var (method, path) = (route[..route.IndexOf(' ')], route[(route.IndexOf(' ') + 1)..]);
        var request = new HttpRequestMessage(new HttpMethod(method), url is null ? path : url(path));
        if (method is "POST" or "PUT" or "PATCH") request.Content = new ByteArrayContent([]);
        auth?.Invoke(request);
        return request;
    }

    private static async Task AssertStatusAsync(HttpClient client, string path, HttpStatusCode status)
    {
        using var r = await client.GetAsync(path);
        Assert.True(r.StatusCode == status, $"{path}: {(int)r.StatusCode}, expected {(int)status}");
    }

    /// <summary>Connects to the hub over the test server (long polling: negotiate, then the transport), calls SubscribeAll and disconnects.</summary>
    private static async Task ConnectAsync(ApiHost host, string url = "/hubs/training", Action<HttpConnectionOptions>? configure = null)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(host.Server.BaseAddress, url), o =>
            {
                o.HttpMessageHandlerFactory = _ => host.Server.CreateHandler();
                o.Transports = HttpTransportType.LongPolling;
                configure?.Invoke(o);
            })
            .Build();
        await using (connection)
        {
            await connection.StartAsync();
            await connection.InvokeAsync("SubscribeAll");
            await connection.StopAsync();
        }
    }
}
