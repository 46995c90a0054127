using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace BeitV2.Web.Infrastructure;

/// <summary>Endpoint metadata: the route takes a multipart form shaped like <see cref="FormType"/>.</summary>
public sealed record FormUploadMetadata(Type FormType);

/// <summary>
/// Describes a multipart form upload in the OpenAPI document. Like <see cref="ImageUploadOperationFilter"/>
/// this replaces <c>Accepts&lt;T&gt;("multipart/form-data")</c>, which would make routing answer other
/// content types with a bare 415 (no ProblemDetails detail) before the handler can explain.
/// </summary>
public sealed class FormUploadOperationFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<FormUploadMetadata>().FirstOrDefault() is not { } form) return;
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["multipart/form-data"] = new() { Schema = context.SchemaGenerator.GenerateSchema(form.FormType, context.SchemaRepository) },
            },
        };
    }
}
