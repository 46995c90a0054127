using System.Globalization;
using Prometheus;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// <c>beitv2_requests_rejected_total{route,status}</c>: every request answered with a 4xx, whichever part
/// refused it (the exception handler's problem details, the rate limiter, status-code pages, a route's own
/// result). It wraps the whole pipeline so it sees the final status; the route is the endpoint's template
/// (bounded), captured before the exception handler clears the endpoint to re-execute.
/// </summary>
public static class RejectedRequestMetrics
{
    public static readonly Counter Rejected = Metrics.CreateCounter("beitv2_requests_rejected_total",
        "Requests refused with a 4xx status, by route template and status.", new CounterConfiguration { LabelNames = ["route", "status"] });

    public static IApplicationBuilder UseRejectedRequestMetrics(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
        try
        {
            await next(context);
        }
        finally
        {
            var status = context.Response.StatusCode;
            if (status is >= 400 and < 500)
            {
                route ??= (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
                if (!route.StartsWith('/')) route = "/" + route;
                Rejected.WithLabels(route, status.ToString(CultureInfo.InvariantCulture)).Inc();
            }
        }
    });
}
