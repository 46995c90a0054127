using BeitV2.Ml;

namespace BeitV2.Web;

public static class HostInfoApi
{
    /// <summary>Minimal liveness and version endpoints until the full API (issue 3) lands.</summary>
    public static IEndpointRouteBuilder MapHostInfo(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health/live", () => TypedResults.Ok(new { status = "live" }));
        app.MapGet("/api/v1/info", () => TypedResults.Ok(new
        {
            name = "BeitV2",
            torch = TorchRuntime.Describe(),
        }));
        return app;
    }
}
