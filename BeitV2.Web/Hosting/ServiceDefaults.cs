using System.Reflection;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.OpenApi;
using Prometheus;

namespace BeitV2.Web.Hosting;

/// <summary>Cross-cutting set-up in one place: options, errors as ProblemDetails, limits, API key, security headers, OpenAPI, metrics.</summary>
public static class ServiceDefaults
{
    public static WebApplicationBuilder AddServiceDefaults(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.Configure<StorageOptions>(builder.Configuration.GetSection(StorageOptions.Section));
        services.Configure<MlOptions>(builder.Configuration.GetSection(MlOptions.Section));
        services.Configure<ModelsOptions>(builder.Configuration.GetSection(ModelsOptions.Section));
        services.Configure<InferenceOptions>(builder.Configuration.GetSection(InferenceOptions.Section));
        services.Configure<LimitsOptions>(builder.Configuration.GetSection(LimitsOptions.Section));
        services.Configure<SecurityOptions>(builder.Configuration.GetSection(SecurityOptions.Section));
        services.AddSingleton<ComputeDevices>();   // Ml:Device, precision, training devices, per-device gates
        services.AddApiKeyAuthentication();         // Security:ApiKey(s): every route but health and the UI

        services.AddProblemDetails();
        services.AddExceptionHandler<ProblemExceptionHandler>();
        // Unbindable query values (topK=abc) throw BadHttpRequestException so the handler above
        // answers with a detail naming the parameter; otherwise, outside Development, minimal APIs
        // answer a bare 400 whose ProblemDetails has no detail.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        // The server-wide body limit is the largest route limit (checkpoint import); image routes
        // lower it per request (UploadedImageReader).
        var limits = builder.Configuration.GetSection(LimitsOptions.Section).Get<LimitsOptions>() ?? new LimitsOptions();
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = limits.MaxImportBytes);
        services.Configure<FormOptions>(f => f.MultipartBodyLengthLimit = limits.MaxImportBytes);

        services.AddBeitV2RateLimiting(builder.Configuration);   // inference concurrency + per-client token bucket → 429
        services.AddBeitV2HealthChecks(builder.Configuration);   // /health/ready: models, data folder, PostgreSQL, Redis

        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "BeitV2",
                Version = "v1",
                Description = "BEiT v2 inference: visual tokens, embeddings, classes and segmentation masks. Errors are RFC 7807 problem details.",
            });
            var xml = Path.Combine(AppContext.BaseDirectory, $"{Assembly.GetExecutingAssembly().GetName().Name}.xml");
            if (File.Exists(xml)) o.IncludeXmlComments(xml);
            o.OperationFilter<ImageUploadOperationFilter>();
            o.OperationFilter<FormUploadOperationFilter>();
            o.OperationFilter<ResponseExamplesOperationFilter>();
        });
        return builder;
    }

    public static WebApplication UseServiceDefaults(this WebApplication app)
    {
        app.UseSecurityHeaders();               // on every response, errors included
        app.UseRejectedRequestMetrics();        // counts every 4xx by route and status
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseHttpMetrics();
        app.UseDefaultFiles();
        app.UseStaticFiles();                   // the UI: open, it asks for the key
        app.UseApiKeyAuthentication();          // everything below needs the key when one is set
        app.UseRateLimiter();                   // inference back-pressure, optional per-key token bucket
        app.UseSwagger();
        app.UseSwaggerUI(o => o.SwaggerEndpoint("/swagger/v1/swagger.json", "BeitV2 v1"));
        app.MapMetrics("/metrics");
        return app;
    }
}
