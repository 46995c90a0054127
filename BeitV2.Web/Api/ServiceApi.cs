using BeitV2.Web.Configuration;
using BeitV2.Web.Hosting;
using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Api;

/// <summary>Health and <c>/api/v1/info</c>: what runs, on which device, which models are missing.</summary>
public static class ServiceApi
{
    /// <param name="Device">the inference device: "cpu" or "cuda:N" (details in <paramref name="Compute"/>).</param>
    /// <param name="Inference">the <c>Inference:*</c> settings, including <c>engine</c>, <c>precision</c> and <c>onnx</c> (session options).</param>
    /// <param name="Compute">devices and precision: inference device and precision, CUDA, TF32, training devices, GPU sharing.</param>
    /// <param name="Served">the loaded models (those of <paramref name="LoadedModels"/> that finished loading), each with the engine that serves it.</param>
    public sealed record InfoResponse(string Name, string Version, string Device, int Threads, IReadOnlyDictionary<string, string> DefaultModels,
        IReadOnlyList<MissingModel> MissingModels, IReadOnlyList<string> LoadedModels, object Limits, object Inference, ComputeInfo Compute,
        IReadOnlyList<ServedModelInfo> Served)
    {
        /// <summary>The model sizes a job's <c>config.model</c> accepts, smallest first (the Train form offers these).</summary>
        public IReadOnlyList<string> ModelSizes { get; init; } = BeitV2.Ml.Models.ModelPresets.Names;
    }

    /// <summary>One entry of <c>checks</c> in the readiness answer.</summary>
    public sealed record ReadinessCheck(string Name, string Status, string? Description);

    /// <param name="Status">"ready"; "missing-models" when only default models are missing; "not-ready" when another check fails.</param>
    /// <param name="Checks">every readiness check (models, data-directory, postgres and redis when configured) with its state.</param>
    public sealed record ReadinessResponse(string Status, IReadOnlyList<MissingModel> MissingModels, IReadOnlyList<ReadinessCheck>? Checks = null);

    public static IEndpointRouteBuilder MapServiceApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health/live", () => TypedResults.Ok(new { status = "live" })).WithTags("Service").WithSummary("200 while the process serves")
            .AllowAnonymous(); // probes (container, load balancer) carry no key

        // The registered ASP.NET Core health checks (HealthChecks.cs) run through HealthCheckService here rather than
        // MapHealthChecks, so the route keeps its typed answer in the OpenAPI document.
        app.MapGet("/health/ready", async (ModelRegistry registry, HealthCheckService health, CancellationToken ct) =>
            {
                var report = await health.CheckHealthAsync(ct);
                var checks = report.Entries.Select(e => new ReadinessCheck(e.Key, e.Value.Status.ToString().ToLowerInvariant(), e.Value.Description)).ToList();
                var failing = report.Entries.Where(e => e.Value.Status == HealthStatus.Unhealthy).Select(e => e.Key).ToList();
                var status = failing.Count == 0 ? "ready" : failing.All(f => f == HealthChecks.Models) ? "missing-models" : "not-ready";
                var body = new ReadinessResponse(status, MissingDefaultModels.Of(registry), checks);
                return failing.Count == 0 ? Results.Ok(body) : Results.Json(body, statusCode: StatusCodes.Status503ServiceUnavailable);
            })
            .WithTags("Service").WithSummary("200 when every readiness check passes (default models, writable data directory, PostgreSQL and Redis when configured), else 503 naming the failing ones")
            .Produces<ReadinessResponse>().Produces<ReadinessResponse>(503)
            .AllowAnonymous();

        app.MapGet("/api/v1/info", (ModelRegistry registry, ModelHost host, ComputeDevices devices, IOptions<LimitsOptions> limits, IOptions<InferenceOptions> inference) =>
                TypedResults.Ok(new InfoResponse(
                    "BeitV2",
                    typeof(ServiceApi).Assembly.GetName().Version?.ToString() ?? "0",
                    host.DeviceName,
                    TorchSharp.torch.get_num_threads(),
                    registry.Defaults(),
                    MissingDefaultModels.Of(registry),
                    host.LoadedIds,
                    limits.Value,
                    inference.Value,
                    devices.Describe(),
                    host.Served)))
            .WithTags("Service").WithSummary("Version, device (and compute: precision, CUDA, training devices), default models, missing models, limits, " +
                "the serving engine and each loaded model's engine");
        return app;
    }
}
