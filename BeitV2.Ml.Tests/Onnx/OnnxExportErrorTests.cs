using BeitV2.Ml.Catalog;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Onnx;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>Models the exporters refuse, with a clear error rather than a graph that serves nonsense.</summary>
public sealed class OnnxExportErrorTests
{
    [Fact]
    public void TokenizerWithAnUninitialisedCodebookIsRefused()
    {
        // k-means init: the codebook is zeros until the first training batch (initted = 0); every id would be 0.
        using var model = new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = true });
        var e = Assert.Throws<InvalidOperationException>(() => ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, OnnxExportOptions.Serving));
        Assert.Contains("never initialised", e.Message);
    }
}
