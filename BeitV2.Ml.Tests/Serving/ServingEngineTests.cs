using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Serving;
using static BeitV2.Ml.Tests.Serving.ServingSupport;

namespace BeitV2.Ml.Tests.Serving;

/// <summary>
/// The two engines answer alike: every servable kind loaded with <c>Inference:Engine=onnx</c> answers as the TorchSharp
/// engine does (floats at the strict parity tolerance, token ids and class maps exactly), for batches of several sizes
/// in one reused <see cref="ImageBatch"/> as the batching worker uses it. Kinds without an exporter yet are served by
/// TorchSharp under the onnx engine, with the reason, so this holds before and after their exporters exist.
/// </summary>
public sealed class ServingEngineTests
{
    public static TheoryData<string> Kinds() => new(Servable().Select(s => s.Name));

    [Theory]
    [MemberData(nameof(Kinds))]
    public void OnnxEngine_AnswersAsTheTorchEngine_AtEveryBatchSize(string name)
    {
        var (_, kind, config) = Servable().Single(s => s.Name == name);
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        SavePackage(kind, config(), package);

        using var torch = ServedModelLoader.Load(package, Options(ServingEngine.Torch)).Model;
        var load = ServedModelLoader.Load(package, Options(ServingEngine.Onnx));
        using var onnx = load.Model;
        Assert.Equal(ServingEngine.Torch, torch.Engine);
        if (!ModelCatalog.Default[kind].CanExportOnnx)
        {
            Assert.Equal(ServingEngine.Torch, onnx.Engine);
            Assert.Contains("no ONNX exporter", load.Fallback);
            Assert.Null(load.Error);
            return;
        }
        Assert.Equal(ServingEngine.Onnx, onnx.Engine);
        Assert.Null(load.Fallback);
        Assert.Equal(torch.Operations.Select(o => o.Operation), onnx.Operations.Select(o => o.Operation));
        Assert.Equal(torch.Preprocessing.InputSize, onnx.Preprocessing.InputSize);

        var size = torch.Preprocessing.InputSize;
        const int capacity = 5;
        var images = Images(size, capacity, seed: 3);
        var alone = images.Select(image => RunAll(torch, ImageBatch.Of(size, image))).ToList();
        // One buffer of the worker's kind, reused for batches of every size; images at different positions each time.
        var buffer = new ImageBatch(capacity, size);
        foreach (var n in new[] { 1, 2, 3, capacity, 1, 4 })
        {
            var order = Enumerable.Range(0, n).Select(i => (i + n) % capacity).ToList();
            buffer.Fill(order.Select(i => images[i]).ToList());
            foreach (var (operation, answers) in RunAll(onnx, buffer))
            {
                Assert.Equal(n, answers.Length);
                for (var i = 0; i < n; i++) Same(alone[order[i]][operation][0], answers[i], $"{name}, {operation}, batch of {n}, image {order[i]} at {i}");
            }
        }
    }

    [Fact]
    public void TorchEngine_ServesEveryKind_WithoutTouchingOnnx()
    {
        foreach (var (name, kind, config) in Servable())
        {
            using var dir = new TempDirectory();
            var package = dir.Combine("model");
            SavePackage(kind, config(), package);
            var exporter = new CountingExporter();
            var load = ServedModelLoader.Load(package, Options(ServingEngine.Torch, exporter));
            using var model = load.Model;
            Assert.Equal(ServingEngine.Torch, model.Engine);
            Assert.Null(load.Fallback);
            Assert.Null(load.Graph);
            Assert.Equal(0, exporter.Count);
            Assert.False(Directory.Exists(Path.Combine(package, OnnxGraphCache.FolderName)), $"{name}: the torch engine wrote a graph");
            var batch = ImageBatch.Of(model.Preprocessing.InputSize, Images(model.Preprocessing.InputSize, 2, seed: 1));
            Assert.All(RunAll(model, batch).Values, answers => Assert.Equal(2, answers.Length));
        }
    }

    [Fact]
    public void TorchOnlyPrecision_IsServedByTorch_WithTheReason()
    {
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        SavePackage(ModelKind.VitCls, VitConfig.Micro(numClasses: 3), package);
        var load = ServedModelLoader.Load(package, Options(ServingEngine.Onnx) with { TorchPrecision = ComputePrecision.Bf16 });
        using var model = load.Model;
        Assert.Equal(ServingEngine.Torch, model.Engine);
        Assert.Equal("bf16", load.Precision);
        Assert.Contains("Ml:InferencePrecision=bf16", load.Fallback);
    }
}
