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
}
