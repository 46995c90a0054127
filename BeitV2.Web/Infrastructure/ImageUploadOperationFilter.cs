using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace BeitV2.Web.Infrastructure;

/// <summary>Endpoint metadata: the route takes images as multipart parts named 'image' or one raw image body.</summary>
public sealed class ImageUploadMetadata;

/// <summary>
/// Describes image uploads in the OpenAPI document. The routes read the body themselves (so they
/// can give the contract's 4xx answers); declaring <c>Accepts</c> would make routing reject other
/// content types with a bare 415 before our handler runs.
/// </summary>
public sealed class ImageUploadOperationFilter : IOperationFilter
{
    private static readonly string[] RawTypes = { "image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif" };

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (!context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<ImageUploadMetadata>().Any()) return;
        var body = new OpenApiRequestBody
        {
            Required = true,
            Description = "One or more images as multipart parts named 'image', or a single raw image body.",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["multipart/form-data"] = new()
                {
                    Schema = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Properties = new Dictionary<string, IOpenApiSchema>
                        {
                            ["image"] = new OpenApiSchema
                            {
                                Type = JsonSchemaType.Array,
                                Items = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" },
                            },
                        },
                        Required = new HashSet<string> { "image" },
                    },
                },
            },
        };
        foreach (var type in RawTypes)
            body.Content[type] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" } };
        operation.RequestBody = body;
    }
}
