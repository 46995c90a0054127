using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Serving;

/// <summary>How a kind of model is served: the input it expects by default and how to wrap it for serving.</summary>
/// <param name="Preprocessing">written into new packages' manifests; the fallback for packages without one.</param>
/// <param name="Serve">wraps the loaded module with the preprocessing its manifest names.</param>
public sealed record ServingEntry(ModelPreprocessing Preprocessing, Func<ModelPreprocessing, ServedModel> Serve);

/// <summary>The one place that knows, per model type, how it is served (kinds not listed are not served: teachers).</summary>
public static class ServingTable
{
    public static ServingEntry? For(nn.Module module) => module switch
    {
        VqkdTokenizer t => new(ModelPreprocessing.Centre(t.Config.Encoder.ImgSize, VqkdPreProcess.Normalization(t.Config.ProcessType)),
            p => new ServedTokenizer(t, p)),
        BeitVisionTransformer v => new(ModelPreprocessing.Centre(v.Config.ImgSize, PixelNormalization.ImageNet), p => new ServedVit(v, p)),
        BeitMim m => new(ModelPreprocessing.Centre(m.Config.ImgSize, PixelNormalization.ImageNet), p => new ServedMim(m, p)),
        BeitSegmenter s => new(ModelPreprocessing.FullResize(s.Config.Backbone.ImgSize, PixelNormalization.ImageNet), p => new ServedSegmenter(s, p)),
        _ => null,
    };

    /// <summary>The served form of a loaded package: its manifest's preprocessing, or the kind's default for packages without one.</summary>
    public static ServedModel? Serve(LoadedModel package) =>
        For(package.Module) is { } entry ? entry.Serve(package.Manifest.Preprocessing ?? entry.Preprocessing) : null;
}
