using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Tests.Parity;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// The parity fixtures through the ONNX path: each servable model exported by our exporter (fp32) and run by ONNX
/// Runtime, every output the graph computes compared with the official code's at the strict tolerance (integers
/// exactly), at both graph optimisation levels (ORT's fusions must not change the result beyond it).
/// </summary>
[Trait("Category", "Parity")]
public sealed class OnnxParityTests
{
    public static TheoryData<string, GraphOptimizationLevel> Cases()
    {
        var data = new TheoryData<string, GraphOptimizationLevel>();
        foreach (var f in FixtureDescriptor.All().Where(f => f.Kind == "vit_cls"))
        {
            data.Add(f.Stem, GraphOptimizationLevel.ORT_ENABLE_ALL);
            data.Add(f.Stem, GraphOptimizationLevel.ORT_DISABLE_ALL);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void VitClassifierMatchesReference(string stem, GraphOptimizationLevel level)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        var io = fixture.LoadIo();
        var config = ModelJson.Deserialize<VitConfig>(fixture.Config, fixture.Stem);
        using var model = new BeitVisionTransformer(config);
        VitCheckpoint.Load(model, fixture.WeightsSafetensors);
        model.eval();
        var graph = ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, new OnnxExportOptions(Diagnostics: true));
        var outputs = OnnxTestRun.Run(graph, new Dictionary<string, Tensor> { [OnnxNames.Images] = io["images"] }, level);
        var compared = 0;
        foreach (var spec in fixture.Io.Where(x => x.Role == "output"))
        {
            Assert.True(outputs.TryGetValue(spec.Name, out var actual), $"{spec.Name}: not an output of the exported graph");
            TensorAssert.Matches(spec, io[spec.Name], actual);
            compared++;
        }
        Assert.True(compared >= 3);
    }
}
