using BeitV2.Ml.Catalog;
using Google.Protobuf;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using BeitV2.Ml.Tests.Parity;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// The execution provider of the test device (<c>BEITV2_TEST_DEVICE</c>: the CPU here, the CUDA provider in
/// <c>scripts/gpu-check</c>) loads and runs an exported graph as the CPU provider does; and asking a CPU build for CUDA
/// is a clear error rather than a silent CPU fallback.
/// </summary>
[Trait("Category", "Parity")]
public sealed class OnnxProviderTests
{
    [Fact]
    public void TheTestDevicesProvider_Loads_AndAnswersAsTheCpuProvider()
    {
        var device = ParityDevice.Name;
        Assert.Contains(OnnxDevices.ProviderOf(device), OnnxDevices.Available());
        manual_seed(3);
        using var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 6));
        model.eval();
        var graph = ModelCatalog.Default.EntryOf(model)!.ExportOnnx(model, OnnxExportOptions.Serving).ToByteArray();
        var size = model.Config.ImgSize;
        var random = new Random(4);
        var images = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 3 * size * size).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray()).ToArray();
        var operations = new[] { Operation.Features, Operation.Classify };
        var preprocessing = ModelCatalog.Default[ModelKind.VitCls].DefaultPreprocessing(model.Config)!;

        ClassProbabilities[] Classify(string on)
        {
            using var options = new OnnxSessionSettings { IntraOpThreads = 1 }.Create(on);
            using var served = new OnnxServedModel(new InferenceSession(graph, options), ModelKind.VitCls, operations, preprocessing, on, OnnxPrecision.Fp32);
            Assert.Equal(OnnxDevices.ProviderOf(on), served.Provider);
            return served.Classify(ImageBatch.Of(size, images));
        }

        var cpu = Classify("cpu");
        var here = Classify(device);
        for (var i = 0; i < images.Length; i++)
        {
            var want = cpu[i].Probabilities;
            var got = here[i].Probabilities;
            for (var k = 0; k < want.Length; k++)
                Assert.True(Math.Abs(got[k] - want[k]) <= 1e-5 + 1e-5 * Math.Abs(want[k]), $"{device} vs cpu, image {i}, class {k}: {got[k]} vs {want[k]}");
        }
    }

    [Fact]
    public void CudaAskedOfABuildWithoutTheCudaProvider_IsAClearError()
    {
        if (OnnxDevices.Available().Contains(OnnxDevices.CudaProvider)) return; // the CUDA build (-p:BeitV2Cuda=true) has it
        var e = Assert.Throws<InvalidOperationException>(() => new OnnxSessionSettings().Create("cuda:0"));
        Assert.Contains("-p:BeitV2Cuda=true", e.Message);
        Assert.Contains("CPUExecutionProvider", e.Message);
    }

    [Fact]
    public void UnknownDevicesAndSettings_AreRefused()
    {
        Assert.Throws<ArgumentException>(() => new OnnxSessionSettings().Create("tpu:0"));
        Assert.Contains("GraphOptimization", Assert.Throws<ArgumentException>(() => new OnnxSessionSettings { GraphOptimization = "max" }.Create("cpu")).Message);
    }

    [Fact]
    public void Int8Kernels_ExactAndFastAreExplicit_AutoFollowsTheCpusVnni()
    {
        Assert.True(new OnnxSessionSettings { Int8Kernels = "exact" }.ExactInt8Kernels);
        Assert.False(new OnnxSessionSettings { Int8Kernels = "fast" }.ExactInt8Kernels);
        var vnni = System.Runtime.Intrinsics.X86.AvxVnni.IsSupported
                   || (File.Exists("/proc/cpuinfo") && File.ReadAllText("/proc/cpuinfo").Contains("vnni", StringComparison.Ordinal));
        Assert.Equal(System.Runtime.Intrinsics.X86.X86Base.IsSupported && !vnni, new OnnxSessionSettings().ExactInt8Kernels);
        Assert.Contains("Int8Kernels", Assert.Throws<ArgumentException>(() => new OnnxSessionSettings { Int8Kernels = "vnni" }.Create("cpu")).Message);
    }
}
