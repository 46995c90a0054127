using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using BeitV2.Web.Configuration;
using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Hosting;

/// <summary>
/// Back-pressure with ASP.NET Core's rate limiter: the inference routes share one concurrency limiter
/// (<c>Inference:MaxInFlight</c> running, <c>Inference:MaxQueued</c> waiting in arrival order; beyond
/// that 429 at once), and every <c>/api</c> request can be held to a per-client token bucket
/// (<c>RateLimits:PerKeyTokensPerMinute</c>, partitioned by API key, else by client address).
/// Refusals are 429 problem+json with <c>Retry-After</c>, like every other client error.
/// </summary>
public static class RateLimiting
{
    public const string InferencePolicy = "inference";

    public static IServiceCollection AddBeitV2RateLimiting(this IServiceCollection services, IConfiguration configuration)
    {
        services.Configure<RateLimitsOptions>(configuration.GetSection(RateLimitsOptions.Section));
        services.AddSingleton<InferenceConcurrency>();
        services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(InferencePolicy, context =>
            {
                // One limiter shared by all inference routes, owned by a singleton so tests and metrics can read it.
                var shared = context.RequestServices.GetRequiredService<InferenceConcurrency>();
                return RateLimitPartition.Get(InferencePolicy, _ => new NonDisposingLimiter(shared.Limiter));
            });
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(PerClientPartition);
            o.OnRejected = OnRejectedAsync;
        });
        return services;
    }

    /// <summary>The per-client token bucket of <c>/api</c> requests; no limit when the option is 0 or for other paths.</summary>
    private static RateLimitPartition<string> PerClientPartition(HttpContext context)
    {
        var perMinute = context.RequestServices.GetRequiredService<IOptions<RateLimitsOptions>>().Value.PerKeyTokensPerMinute;
        if (perMinute <= 0 || !context.Request.Path.StartsWithSegments("/api")) return RateLimitPartition.GetNoLimiter("unlimited");
        return RateLimitPartition.GetTokenBucketLimiter(ClientKey(context), _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute,
            TokensPerPeriod = perMinute,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    /// <summary>The API key's hash (the key itself is never kept as a partition name), else the client address.</summary>
    private static string ClientKey(HttpContext context)
    {
        var key = context.Request.Headers["X-Api-Key"].FirstOrDefault();
        if (string.IsNullOrEmpty(key) && context.Request.Headers.Authorization.FirstOrDefault() is { } auth
            && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            key = auth["Bearer ".Length..].Trim();
        if (!string.IsNullOrEmpty(key)) return "key:" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];
        return "ip:" + (context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
    }

    private static async ValueTask OnRejectedAsync(OnRejectedContext rejected, CancellationToken ct)
    {
        var http = rejected.HttpContext;
        var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
        // The token bucket says when its next token comes; the concurrency limiter's refusal carries no metadata.
        var isInference = !rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out _);
        string detail;
        if (isInference)
        {
            var limits = http.RequestServices.GetRequiredService<IOptions<InferenceOptions>>().Value;
            InferenceMetrics.Requests.WithLabels("any", "rejected").Inc();
            detail = $"More than {InferenceConcurrency.Permits(limits)} inference requests are in flight and {InferenceConcurrency.Queue(limits)} are waiting " +
                     "(Inference:MaxInFlight, Inference:MaxQueued); retry shortly.";
        }
        else
        {
            var perMinute = http.RequestServices.GetRequiredService<IOptions<RateLimitsOptions>>().Value.PerKeyTokensPerMinute;
            detail = $"This client has used its {perMinute} requests per minute (RateLimits:PerKeyTokensPerMinute); retry in {retryAfter} s.";
        }
        http.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = http,
            ProblemDetails = { Status = StatusCodes.Status429TooManyRequests, Title = "Too many requests", Detail = detail },
        });
    }
}

/// <summary>The inference routes' shared concurrency limiter (sized from <see cref="InferenceOptions"/> at start-up).</summary>
public sealed class InferenceConcurrency(IOptions<InferenceOptions> options) : IDisposable
{
    public ConcurrencyLimiter Limiter { get; } = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = Permits(options.Value),
        QueueLimit = Queue(options.Value),
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    /// <summary>Requests holding a permit now.</summary>
    public long InFlight => Permits(options.Value) - (Limiter.GetStatistics()?.CurrentAvailablePermits ?? 0);

    /// <summary>Requests waiting for a permit now.</summary>
    public long Queued => Limiter.GetStatistics()?.CurrentQueuedCount ?? 0;

    public static int Permits(InferenceOptions o) => Math.Max(1, o.MaxInFlight);

    public static int Queue(InferenceOptions o) => Math.Max(0, o.MaxQueued);

    public void Dispose() => Limiter.Dispose();
}

/// <summary>
/// Hands the middleware the singleton's limiter without giving it away: the middleware disposes partition
/// limiters it considers idle and would then fail every later request with ObjectDisposedException.
/// Never idle, and Dispose does nothing; <see cref="InferenceConcurrency"/> owns the real one.
/// </summary>
internal sealed class NonDisposingLimiter(RateLimiter inner) : RateLimiter
{
    public override TimeSpan? IdleDuration => null;

    public override RateLimiterStatistics? GetStatistics() => inner.GetStatistics();

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => inner.AttemptAcquire(permitCount);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken ct) => inner.AcquireAsync(permitCount, ct);

    protected override void Dispose(bool disposing) { }

    protected override ValueTask DisposeAsyncCore() => ValueTask.CompletedTask;
}
