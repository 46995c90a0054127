using BeitV2.Ml.Catalog;
using Onnx;
using static TorchSharp.torch;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// Writes a served model's graph through its catalogue entry (<see cref="ModelEntry.ExportOnnx"/>). Serving exports
/// through an instance of this class so that tests can count exports or make one fail; the default is the catalogue.
/// </summary>
public class OnnxExporter
{
    public static OnnxExporter Default { get; } = new();

    /// <exception cref="NotSupportedException">the kind has no exporter.</exception>
    public virtual ModelProto Export(ModelEntry entry, nn.Module module, OnnxExportOptions options) => entry.ExportOnnx(module, options);
}
