using BeitV2.Web.Configuration;
using BeitV2.Web.Registry;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Api;

/// <summary><c>/api/v1/bundled-models</c>: the models that ship with the app and how they were trained.</summary>
public static class BundledModelsApi
{
    public static IEndpointRouteBuilder MapBundledModelsApi(this IEndpointRouteBuilder app)
    {
        // Outside /api/v1/models/{id}: a route there would hide a model whose id is the same word.
        app.MapGet("/api/v1/bundled-models", (IOptions<ModelsOptions> options) => TypedResults.Ok(BundledModels.Read(options.Value.Bundle)))
            .WithTags("Models")
            .WithSummary("The shipped default models (kind → id) and how they were trained: the pipeline run's results table (Markdown) and per-stage results")
            .ProducesProblem(404);
        return app;
    }
}
