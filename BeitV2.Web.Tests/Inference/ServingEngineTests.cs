using System.Net;
using System.Text.Json;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Inference;

/// <summary>
/// <c>Inference:Engine</c> through the service: which engine serves each loaded model (<c>/api/v1/info</c>, metrics),
/// the torch engine still serving, an export failure served by TorchSharp and logged, and bad serving settings stopping
/// the server at start-up.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ServingEngineTests(SeededApi api)
{
    private static bool Exportable(ApiHost host, string id) =>
        ModelCatalog.Default[ModelPackage.ReadManifest(host.Registry.PackageDirectory(id)).Kind].CanExportOnnx;

    [Fact]
    public async Task Info_NamesTheEngineOfEveryLoadedModel_AndTheMetricsToo()
    {
        var info = await api.Client.GetAsync("/api/v1/info").JsonAsync();
        var inference = info.GetProperty("inference");
        Assert.Equal("onnx", inference.Str("engine"));
        Assert.Equal("fp32", inference.Str("precision"));
        Assert.Equal("all", inference.GetProperty("onnx").Str("graphOptimization"));

        var served = info.Items("served").ToDictionary(s => s.Str("id"));
        var loaded = info.Items("loadedModels").Select(e => e.GetString()!).ToList();
        string[] seeded = [api.Classifier.Id, api.Backbone.Id, api.Tokenizer.Id, api.Segmenter.Id, api.Pretrain.Id];
        Assert.Equal(seeded.Order(), served.Keys.Order());
        Assert.Equal(loaded.Order(), served.Keys.Order());
        var metrics = await api.Client.GetStringAsync("/metrics");
        foreach (var id in seeded)
        {
            var s = served[id];
            Assert.Equal("cpu", s.Str("device"));
            Assert.Equal("fp32", s.Str("precision"));
            if (Exportable(api.Host, id))
            {
                Assert.Equal("onnx", s.Str("engine"));
                Assert.Equal(JsonValueKind.Null, s.GetProperty("fallback").ValueKind);
                Assert.Contains(s.Str("graph"), new[] { "exported", "cached" });
            }
            else
            {
                Assert.Equal("torch", s.Str("engine"));
                Assert.Contains("no ONNX exporter", s.Str("fallback"));
                Assert.Equal(JsonValueKind.Null, s.GetProperty("graph").ValueKind);
            }
            Assert.Contains($"beitv2_model_serving_info{{model=\"{id}\",engine=\"{s.Str("engine")}\",precision=\"fp32\",device=\"cpu\"}} 1", metrics);
        }
        Assert.True(Exportable(api.Host, api.Classifier.Id), "the ViT classifier has an exporter: at least one model must run on ONNX Runtime here");
        await api.AssertStillServingAsync();
    }

    private static async Task<(float[][] Probabilities, float[][] Embeddings, JsonElement Served)> Ask(ApiHost host, byte[][] images)
    {
        manual_seed(77);
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 5)), "same weights");
        using var client = host.CreateClient();
        var classify = await client.PostAsync("/api/v1/classify?topK=5", Http.Images(images)).JsonAsync();
        var probabilities = classify.Items("images").Select(i => i.Items("predictions")
            .OrderBy(p => p.Int("classIndex")).Select(p => p.GetProperty("probability").GetSingle()).ToArray()).ToArray();
        var embeddings = (await client.PostAsync("/api/v1/embeddings?pooling=mean", Http.Images(images)).JsonAsync())
            .Items("data").Select(d => d.GetProperty("embedding").Floats()).ToArray();
        var served = (await client.GetAsync("/api/v1/info").JsonAsync()).Items("served").Single(s => s.Str("id") == info.Id);
        return (probabilities, embeddings, served.Clone());
    }

    private static void Close(float[] want, float[] got, string what)
    {
        Assert.Equal(want.Length, got.Length);
        var atol = 1e-5 * Math.Max(1.0, want.Max(MathF.Abs));
        for (var i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= atol + 1e-5 * Math.Abs(want[i]), $"{what}[{i}]: {got[i]} vs {want[i]}");
    }

    [Fact]
    public async Task TorchEngine_StillServes_AndBothEnginesAnswerAlike()
    {
        var images = Enumerable.Range(0, 3).Select(i => TestImages.Png(48, 40, seed: 30 + i)).ToArray();
        using var torchHost = new ApiHost(new Dictionary<string, string?> { ["Inference:Engine"] = "torch" });
        using var onnxHost = new ApiHost();
        var torch = await Ask(torchHost, images);
        var onnx = await Ask(onnxHost, images);
        Assert.Equal("torch", torch.Served.Str("engine"));
        Assert.Equal(JsonValueKind.Null, torch.Served.GetProperty("fallback").ValueKind);
        Assert.Equal("onnx", onnx.Served.Str("engine"));
        Assert.Equal("exported", onnx.Served.Str("graph"));
        for (var i = 0; i < images.Length; i++)
        {
            Close(torch.Probabilities[i], onnx.Probabilities[i], $"image {i} probabilities");
            Close(torch.Embeddings[i], onnx.Embeddings[i], $"image {i} embedding");
        }
        torchHost.AssertNoServerErrors();
        onnxHost.AssertNoServerErrors();
    }

    private sealed class FailingExporter : OnnxExporter
    {
        public int Attempts;

        public override global::Onnx.ModelProto Export(ModelEntry entry, nn.Module module, OnnxExportOptions options)
        {
            Interlocked.Increment(ref Attempts);
            throw new InvalidOperationException("exporter out of order (test)");
        }
    }

    [Fact]
    public async Task ExportFailure_IsLoggedAsAWarning_AndTorchServesTheModel()
    {
        var exporter = new FailingExporter();
        using var host = new ApiHost(services: s => s.AddSingleton<OnnxExporter>(exporter));
        var info = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "unexportable");
        using var client = host.CreateClient();
        var json = await client.PostAsync("/api/v1/classify", Http.Images(TestImages.Png(40, 30))).JsonAsync();
        Assert.Equal(info.Id, json.Str("model"));
        Assert.Equal(1, exporter.Attempts);

        var served = (await client.GetAsync("/api/v1/info").JsonAsync()).Items("served").Single(s => s.Str("id") == info.Id);
        Assert.Equal("torch", served.Str("engine"));
        Assert.Contains("exporter out of order (test)", served.Str("fallback"));
        var warning = Assert.Single(host.WarningLogs, w => w.Contains(info.Id) && w.Contains("served by TorchSharp instead of ONNX Runtime"));
        Assert.Contains("exporter out of order (test)", warning);
        host.AssertNoServerErrors();   // the service works: a warning, not an error
    }

    public static TheoryData<string, string, string, string> BadSettings() => new()
    {
        { "Inference:Engine", "tensorrt", "", "Inference:Engine 'tensorrt' is not one of onnx, torch" },
        { "Inference:Precision", "int4", "", "Inference:Precision 'int4' is not one of fp32, int8" },
        { "Inference:Precision", "int8", "torch", "Inference:Precision=int8 needs Inference:Engine=onnx" },
        { "Inference:Onnx:GraphOptimization", "max", "", "Inference:Onnx:GraphOptimization 'max'" },
        { "Inference:Onnx:IntraOpThreads", "-1", "", "Inference:Onnx:IntraOpThreads must be 0" },
        { "Inference:Onnx:Int8Kernels", "vnni", "", "Inference:Onnx:Int8Kernels 'vnni' is not one of auto, fast, exact" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void BadServingSettings_StopTheServerAtStartUp(string key, string value, string engine, string message)
    {
        var settings = new Dictionary<string, string?> { [key] = value };
        if (engine != "") settings["Inference:Engine"] = engine;
        using var host = new ApiHost(settings);
        var e = Assert.ThrowsAny<Exception>(() => host.CreateClient());
        var chain = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException) chain.Add(x.Message);
        if (e is AggregateException a) chain.AddRange(a.Flatten().InnerExceptions.Select(x => x.Message));
        Assert.Contains(chain, m => m.Contains(message, StringComparison.Ordinal));
    }
}
