using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Tests.Parity;
using Microsoft.ML.OnnxRuntime;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// The parity fixtures through the ONNX path: each servable model exported by our exporter (fp32) and run by ONNX
/// Runtime, every output the graph computes compared with the official code's at the strict tolerance (integers
/// exactly), at both graph optimisation levels (ORT's fusions must not change the result beyond it).
/// </summary>
[Trait("Category", "Parity")]
public sealed class OnnxParityTests(ITestOutputHelper log)
{
    /// <summary>Outputs of the <c>mim</c> fixture that the graph does not compute: the masked-only logits (a data-dependent row count) and what needs the labels.</summary>
    private static readonly HashSet<string> MimNotExported = ["logits_final", "logits_agg", "loss_final", "loss_agg", "loss_total", "labels"];

    private static TheoryData<string, GraphOptimizationLevel> CasesOf(string kind)
    {
        var data = new TheoryData<string, GraphOptimizationLevel>();
        foreach (var f in FixtureDescriptor.All().Where(f => f.Kind == kind))
        {
            data.Add(f.Stem, GraphOptimizationLevel.ORT_ENABLE_ALL);
            data.Add(f.Stem, GraphOptimizationLevel.ORT_DISABLE_ALL);
        }
        return data;
    }

    public static TheoryData<string, GraphOptimizationLevel> VitCases() => CasesOf("vit_cls");
    public static TheoryData<string, GraphOptimizationLevel> MimCases() => CasesOf("mim");
    public static TheoryData<string, GraphOptimizationLevel> VqkdCases() => CasesOf("vqkd");

    [Theory]
    [MemberData(nameof(VitCases))]
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
        var compared = CompareWithFixture(fixture, io, outputs);
        Assert.True(compared.Count >= 3);
    }

    [Theory]
    [MemberData(nameof(MimCases))]
    public void MimMatchesReference(string stem, GraphOptimizationLevel level)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        var io = fixture.LoadIo();
        var config = ModelJson.Deserialize<MimConfig>(fixture.Config, fixture.Stem);
        using var model = new BeitMim(config);
        MimCheckpoint.Load(model, fixture.WeightsSafetensors);
        model.eval();
        var graph = ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, new OnnxExportOptions(Diagnostics: true, MaskInput: true));
        var outputs = OnnxTestRun.Run(graph, new Dictionary<string, Tensor>
        {
            [OnnxNames.Images] = io["images"],
            [OnnxNames.BoolMaskedPos] = io["bool_masked_pos"],
        }, level);
        var compared = CompareWithFixture(fixture, io, outputs);
        var missing = fixture.Io.Where(x => x.Role == "output" && !MimNotExported.Contains(x.Name) && !compared.Contains(x.Name)).Select(x => x.Name).ToList();
        Assert.True(missing.Count == 0, $"not computed by the exported graph: {string.Join(", ", missing)}");
        Assert.Contains("logits_all_final", compared);

        // The served `mean` of the same (masked) forward: the mean of the reference's normed patch tokens.
        using var mean = io["patch_tokens_final"].mean(new long[] { 1 });
        log.WriteLine($"mean (vs the mean of patch_tokens_final): {OnnxCompare.Strictly(OnnxNames.Mean, mean, outputs[OnnxNames.Mean])}");
    }

    [Theory]
    [MemberData(nameof(VqkdCases))]
    public void VqkdTokenizerMatchesReference(string stem, GraphOptimizationLevel level)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        var io = fixture.LoadIo();
        var config = ModelJson.Deserialize<VqkdConfig>(fixture.Config, fixture.Stem);
        using var model = new VqkdTokenizer(config);
        VqkdCheckpoint.Load(model, fixture.WeightsSafetensors);
        model.eval();
        var graph = ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, new OnnxExportOptions(Diagnostics: true));
        // The graph takes the encoder's input: the fixture's images_raw mapped by the reference's pre_process.
        Tensor images;
        using (inference_mode()) images = model.PreProcess(io["images_raw"]);
        var outputs = OnnxTestRun.Run(graph, new Dictionary<string, Tensor> { [OnnxNames.Images] = images }, level);
        outputs["quant_indices"] = outputs[OnnxNames.TokenIds].reshape(-1);
        var compared = CompareWithFixture(fixture, io, outputs);
        var onPath = fixture.Io
            .Where(x => x.Role == "output" && (x.Name is "token_ids" or "quant_indices" or "encoder_out" or "encode_task_out" or "quantized"
                                               || x.Name.StartsWith("encoder_hidden_", StringComparison.Ordinal)))
            .Select(x => x.Name).ToList();
        Assert.Contains(OnnxNames.TokenIds, onPath);
        var missing = onPath.Where(n => !compared.Contains(n)).ToList();
        Assert.True(missing.Count == 0, $"not computed by the exported graph: {string.Join(", ", missing)}");
        log.WriteLine(OnnxExportShapeTests.CodeMargins(model, images));
    }

    /// <summary>Compares every graph output the fixture also lists (strict, integers exactly); logs each share of the tolerance; returns the names compared.</summary>
    private HashSet<string> CompareWithFixture(FixtureDescriptor fixture, Dictionary<string, Tensor> io, Dictionary<string, Tensor> outputs)
    {
        var compared = new HashSet<string>();
        var failures = new List<string>();
        foreach (var spec in fixture.Io.Where(x => x.Role == "output" && outputs.ContainsKey(x.Name)))
        {
            try
            {
                log.WriteLine($"{spec.Name}: {OnnxCompare.Matches(spec, io[spec.Name], outputs[spec.Name])}");
            }
            catch (Exception e) { failures.Add(e.Message); }
            compared.Add(spec.Name);
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        return compared;
    }
}
