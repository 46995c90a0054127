using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace BeitV2.Web.Infrastructure;

/// <summary>Example bodies in the OpenAPI document for the inference routes and their errors.</summary>
public sealed class ResponseExamplesOperationFilter : IOperationFilter
{
    private static readonly Dictionary<string, string> Examples = new()
    {
        ["api/v1/tokens"] = """{"model":"vqkd-base-3x-clip-1a2b3c","rows":14,"cols":14,"codebookSize":8192,"images":[{"index":0,"tokens":[[3812,7466,1913,"…"],["…"]],"distinctCodes":97}]}""",
        ["api/v1/embeddings"] = """{"model":"beitv2-base-1k-9f8e7d","dim":768,"pooling":"cls","normalized":true,"data":[{"index":0,"embedding":[0.0123,-0.0456,"…"]}]}""",
        ["api/v1/classify"] = """{"model":"beitv2-base-1k-9f8e7d","images":[{"index":0,"predictions":[{"classIndex":281,"label":"tabby","probability":0.82},{"classIndex":282,"label":"tiger cat","probability":0.11}]}]}""",
        ["api/v1/segment"] = """{"model":"upernet-beitv2-base-ade-4c5d6e","images":[{"index":0,"width":640,"height":480,"classes":[{"classIndex":2,"label":"sky","pixelFraction":0.41}],"maskPng":"iVBORw0KGgo…"}]}""",
    };

    private const string Problem = """{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.16","title":"Not an image","status":415,"detail":"The data is not in a supported image format (PNG, JPEG, GIF, BMP, TIFF, WebP, TGA, PBM)."}""";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        var path = context.ApiDescription.RelativePath?.TrimEnd('/') ?? "";
        if (operation.Responses is null) return;
        if (Examples.TryGetValue(path, out var json) && operation.Responses.TryGetValue("200", out var ok)
            && ok is OpenApiResponse okResponse && okResponse.Content is { } content
            && content.TryGetValue("application/json", out var media))
            media.Example = JsonNode.Parse(json);
        foreach (var (code, response) in operation.Responses)
            if (code.StartsWith('4') && response is OpenApiResponse r && r.Content is { } c && c.TryGetValue("application/problem+json", out var problem))
                problem.Example = JsonNode.Parse(Problem);
    }
}
