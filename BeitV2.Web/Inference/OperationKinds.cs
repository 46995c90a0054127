using BeitV2.Ml.Serving;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Inference;

/// <summary>
/// Which registered kinds of model serve an operation, and the endpoint's name for it: the one check a
/// request passes (when its model is resolved, before anything is read or loaded).
/// </summary>
public static class OperationKinds
{
    /// <param name="Endpoint">the name the error messages use.</param>
    /// <param name="Kinds">API kinds that serve it, in order of preference for the default model.</param>
    public sealed record Entry(string Endpoint, IReadOnlyList<string> Kinds);

    public static Entry For(Operation operation) => operation switch
    {
        Operation.Tokens => new("tokens", [ApiModelKinds.Tokenizer]),
        Operation.Features => new("embeddings", [ApiModelKinds.Backbone, ApiModelKinds.Classifier, ApiModelKinds.Pretrain]),
        Operation.Classify => new("classify", [ApiModelKinds.Classifier]),
        Operation.Segment => new("segment", [ApiModelKinds.Segmenter]),
        _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
    };

    /// <summary>The operations an inference endpoint serves.</summary>
    public static IReadOnlyList<Operation> Served { get; } = [Operation.Tokens, Operation.Features, Operation.Classify, Operation.Segment];

    /// <summary>The model an endpoint uses when the request names none: the default of the first of its kinds that has one.</summary>
    public static string? DefaultModelId(Operation operation, ModelRegistry registry)
    {
        foreach (var kind in For(operation).Kinds)
            if (registry.DefaultId(kind) is { } id) return id;
        return null;
    }

    /// <summary>The endpoints ("embeddings", …) that use <paramref name="modelId"/> when a request names no model.</summary>
    public static IReadOnlyList<string> DefaultFor(string modelId, ModelRegistry registry) =>
        Served.Where(op => DefaultModelId(op, registry) == modelId).Select(op => For(op).Endpoint).ToList();
}
