using BeitV2.Ml.Serving;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Inference;

/// <summary>A default model an inference route needs and does not have, with how to get one.</summary>
public sealed record MissingModel(string Kind, string Route, string HowToFix);

/// <summary>
/// Which inference routes cannot answer for want of a default model (the readiness check and <c>/api/v1/info</c>
/// report them): one per operation, from the same table that admits requests (<see cref="OperationKinds"/>).
/// </summary>
public static class MissingDefaultModels
{
    private static readonly Operation[] Routes = [Operation.Tokens, Operation.Features, Operation.Classify, Operation.Segment];

    public static IReadOnlyList<MissingModel> Of(ModelRegistry registry) => Routes
        .Select(OperationKinds.For)
        .Where(e => e.Kinds.All(k => registry.DefaultId(k) is null))
        .Select(e => new MissingModel(string.Join(" or ", e.Kinds), "/api/v1/" + e.Endpoint,
            $"No {string.Join(" or ", e.Kinds)} is registered: import one with POST /api/v1/models/import " +
            $"(multipart 'file' = an official BEiT v2 .pth or timm .safetensors, 'kind' = {e.Kinds[0]})."))
        .ToList();
}
