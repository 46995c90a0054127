using System.Security.Cryptography;
using System.Text;
using BeitV2.Web.Configuration;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// The optional API key (<c>Security:ApiKey</c>), sent as <c>X-Api-Key</c> or
/// <c>Authorization: Bearer</c>. Routes that change state require it whenever a key is configured.
/// </summary>
public sealed class ApiKeyFilter(IOptions<SecurityOptions> options) : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        ApiKeyCheck.Require(context.HttpContext, options.Value.ApiKey);
        return next(context);
    }
}

/// <summary>Inference routes require the key only when <c>Security:RequireKeyForInference</c> is true.</summary>
public sealed class InferenceKeyFilter(IOptions<SecurityOptions> options) : IEndpointFilter
{
    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (options.Value.RequireKeyForInference) ApiKeyCheck.Require(context.HttpContext, options.Value.ApiKey);
        return next(context);
    }
}

internal static class ApiKeyCheck
{
    public static void Require(HttpContext http, string? key)
    {
        if (string.IsNullOrEmpty(key)) return;
        var given = http.Request.Headers["X-Api-Key"].FirstOrDefault();
        if (string.IsNullOrEmpty(given))
        {
            var auth = http.Request.Headers.Authorization.FirstOrDefault();
            if (auth is not null && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) given = auth["Bearer ".Length..].Trim();
        }
        if (string.IsNullOrEmpty(given) ||
            !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(key)))
            throw new ApiProblemException(StatusCodes.Status401Unauthorized, "Unauthorized",
                string.IsNullOrEmpty(given) ? "This route needs an API key: send it as X-Api-Key or Authorization: Bearer <key>." : "The API key is wrong.");
    }
}
