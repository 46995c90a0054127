using BeitV2.Web.Inference;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.AspNetCore.Http.HttpResults;

namespace BeitV2.Web.Api;

/// <summary><c>/api/v1/models</c>: the model registry.</summary>
public static class ModelsApi
{
    public static RouteGroupBuilder MapModelsApi(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/api/v1/models").WithTags("Models");

        group.MapGet("/", (ModelRegistry registry) => TypedResults.Ok(registry.List().Select(m => Described(m, registry)).ToList()))
            .WithSummary("All registered models");

        group.MapGet("/{id}", (string id, ModelRegistry registry) => TypedResults.Ok(Described(registry.Get(id), registry)))
            .WithSummary("One model, with its lineage").ProducesProblem(404);

        group.MapGet("/{id}/labels", Labels)
            .WithSummary("Class names of a classifier or segmenter (index = class id)").ProducesProblem(404);

        group.MapDelete("/{id}", (string id, ModelRegistry registry) =>
            {
                registry.Delete(id);
                return TypedResults.NoContent();
            })
            .WithSummary("Delete a model (the default model of a kind cannot be deleted: 409)")
            .ProducesProblem(401).ProducesProblem(404).ProducesProblem(409);

        group.MapPost("/{id}/default", (string id, ModelRegistry registry) =>
            {
                registry.SetDefault(id);
                return TypedResults.Ok(Described(registry.Get(id), registry));
            })
            .WithSummary("Make a model the default of its kind").ProducesProblem(401).ProducesProblem(404);

        group.MapModelImport();
        app.MapBundledModelsApi();
        return group;
    }

    /// <summary>The model as the API describes it: with the endpoints it is the default of (<see cref="ModelInfo.DefaultFor"/>).</summary>
    private static ModelInfo Described(ModelInfo model, ModelRegistry registry) =>
        model with { DefaultFor = OperationKinds.DefaultFor(model.Id, registry) };

    private static Ok<IReadOnlyList<string>> Labels(string id, ModelRegistry registry) =>
        TypedResults.Ok(registry.Labels(registry.Get(id).Id) ?? Array.Empty<string>());
}
