using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using BeitV2.Web.Configuration;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// The API key (<c>Security:ApiKey</c>, <c>Security:ApiKeys:0..n</c>) as ASP.NET Core authentication
/// and authorization. When a key is configured, every endpoint needs it (the fallback policy: new
/// routes are protected without anyone remembering to), except those marked <c>AllowAnonymous</c>
/// (health) and, with <c>Security:AnonymousInference=true</c>, the inference routes. Static files
/// (the UI) are served before authorization runs and stay open; Swagger and <c>/metrics</c> come after it.
/// Without any key everything is open (the binding guard refuses that on a public address).
/// </summary>
public static class ApiKeyAuthentication
{
    public const string Scheme = "ApiKey";
    /// <summary>Everything but health, the UI and (optionally) inference.</summary>
    public const string Policy = "ApiKey";
    /// <summary>The inference routes: open when <c>Security:AnonymousInference</c> is true.</summary>
    public const string InferencePolicy = "ApiKeyOrAnonymousInference";

    public static IServiceCollection AddApiKeyAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication(Scheme).AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(Scheme, null);
        services.AddSingleton<IAuthorizationHandler, ApiKeyRequirementHandler>();
        services.AddAuthorizationBuilder()
            .AddPolicy(Policy, p => p.AddRequirements(new ApiKeyRequirement(Inference: false)))
            .AddPolicy(InferencePolicy, p => p.AddRequirements(new ApiKeyRequirement(Inference: true)))
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().AddRequirements(new ApiKeyRequirement(Inference: false)).Build());
        return services;
    }

    /// <summary>After the static files (the UI stays open), before Swagger, metrics and the endpoints.</summary>
    public static IApplicationBuilder UseApiKeyAuthentication(this IApplicationBuilder app) => app.UseAuthentication().UseAuthorization();
}

/// <summary>Met when no key is configured, when the request carried a right key, or for inference with anonymous inference on.</summary>
public sealed record ApiKeyRequirement(bool Inference) : IAuthorizationRequirement;

public sealed class ApiKeyRequirementHandler(IOptionsMonitor<SecurityOptions> options) : AuthorizationHandler<ApiKeyRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ApiKeyRequirement requirement)
    {
        var security = options.CurrentValue;
        if (security.ConfiguredKeys().Count == 0
            || (requirement.Inference && security.InferenceIsAnonymous())
            || context.User.Identities.Any(i => i.IsAuthenticated && i.AuthenticationType == ApiKeyAuthentication.Scheme))
            context.Succeed(requirement);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Reads the key from <c>X-Api-Key</c> or <c>Authorization: Bearer</c>, and on the SignalR hub also
/// from the <c>access_token</c> query parameter (browsers cannot set headers on WebSockets and
/// server-sent events; elsewhere a key in the URL would end up in logs, so it is not read there).
/// Keys are compared in constant time. A 401 is problem+json saying how to send the key.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions, ILoggerFactory logger, UrlEncoder encoder,
    IOptionsMonitor<SecurityOptions> security, IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, logger, encoder)
{
    public const string HeaderName = "X-Api-Key";
    public const string HubPathPrefix = "/hubs";
    private const string WrongKey = "wrong-key";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var keys = security.CurrentValue.ConfiguredKeys();
        if (keys.Count == 0) return Task.FromResult(AuthenticateResult.NoResult());
        var given = GivenKey(Request);
        if (string.IsNullOrEmpty(given)) return Task.FromResult(AuthenticateResult.NoResult());
        if (!Matches(given, keys))
        {
            Context.Items[WrongKey] = true;
            return Task.FromResult(AuthenticateResult.Fail("The API key is wrong."));
        }
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-key")], ApiKeyAuthentication.Scheme);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), ApiKeyAuthentication.Scheme)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var wrong = Context.Items.ContainsKey(WrongKey);
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.Append("WWW-Authenticate", wrong ? "Bearer realm=\"BeitV2\", error=\"invalid_token\"" : "Bearer realm=\"BeitV2\"");
        Response.Headers.Append("WWW-Authenticate", "ApiKey realm=\"BeitV2\", header=\"X-Api-Key\"");
        var how = "send it as the X-Api-Key header or as Authorization: Bearer <key>"
                  + (IsHub(Request) ? " (WebSockets and server-sent events: the access_token query parameter)" : "")
                  + "; in the browser UI, enter it under Settings at the bottom of the page.";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails =
            {
                Status = StatusCodes.Status401Unauthorized,
                Title = "Unauthorized",
                Detail = wrong ? "The API key is wrong: " + how : "This route needs an API key: " + how,
            },
        });
    }

    /// <summary>
    /// Every configured key is compared (no early exit), in constant time; hashing first makes the
    /// comparison independent of the keys' lengths too.
    /// </summary>
    public static bool Matches(string given, IReadOnlyList<string> keys)
    {
        var g = SHA256.HashData(Encoding.UTF8.GetBytes(given));
        var match = false;
        foreach (var key in keys) match |= CryptographicOperations.FixedTimeEquals(g, SHA256.HashData(Encoding.UTF8.GetBytes(key)));
        return match;
    }

    private static string? GivenKey(HttpRequest request)
    {
        var header = request.Headers[HeaderName].FirstOrDefault();
        if (!string.IsNullOrWhiteSpace(header)) return header.Trim();
        var auth = request.Headers.Authorization.FirstOrDefault();
        if (auth is not null && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return auth["Bearer ".Length..].Trim();
        if (IsHub(request) && request.Query["access_token"].FirstOrDefault() is { Length: > 0 } token) return token.Trim();
        return null;
    }

    private static bool IsHub(HttpRequest request) => request.Path.StartsWithSegments(HubPathPrefix, StringComparison.OrdinalIgnoreCase);
}
