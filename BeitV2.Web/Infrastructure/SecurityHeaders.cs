namespace BeitV2.Web.Infrastructure;

/// <summary>
/// Security headers on every response (API answers, errors, 401s, static files, Swagger): a
/// Content-Security-Policy without inline script or style, no framing (CSP <c>frame-ancestors</c>
/// and <c>X-Frame-Options</c> for older browsers), <c>nosniff</c> and no referrer. Swashbuckle's UI
/// page ships inline script and style, so <c>/swagger</c> gets its own policy that allows them
/// (and nothing from other origins). Hand-written: five headers do not need a package.
/// </summary>
public static class SecurityHeaders
{
    /// <summary>The UI: scripts, styles and connections from this origin only; images also from data: and blob: URLs (uploaded pictures, masks).</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>Swagger UI: its page's inline bootstrap script and styles, still same-origin only.</summary>
    public const string SwaggerContentSecurityPolicy =
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>First in the pipeline. The headers are set when the response starts, so the exception handler clearing the response cannot drop them.</summary>
    public static IApplicationBuilder UseSecurityHeaders(this IApplicationBuilder app) => app.Use((context, next) =>
    {
        context.Response.OnStarting(static state =>
        {
            var http = (HttpContext)state;
            var headers = http.Response.Headers;
            headers.ContentSecurityPolicy = http.Request.Path.StartsWithSegments("/swagger", StringComparison.OrdinalIgnoreCase)
                ? SwaggerContentSecurityPolicy
                : ContentSecurityPolicy;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            return Task.CompletedTask;
        }, context);
        return next(context);
    });
}
