using BeitV2.Ml;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>
/// The device the parity tests run on: <c>BEITV2_TEST_DEVICE</c> (<c>cpu</c> by default, <c>cuda:0</c> in
/// <c>scripts/gpu-check</c>). Models and inputs are moved there; outputs are compared on the CPU at the
/// same strict float32 tolerance. On CUDA, TF32 is switched off first: with it, float32 matmuls keep
/// only 10 mantissa bits and could not meet 1e-5 — the tolerance is never loosened for the GPU.
/// </summary>
public static class ParityDevice
{
    private static readonly Lazy<Device> Resolved = new(() =>
    {
        var spec = Environment.GetEnvironmentVariable("BEITV2_TEST_DEVICE");
        var device = TorchRuntime.ResolveDevice(string.IsNullOrWhiteSpace(spec) ? "cpu" : spec);
        TorchRuntime.ConfigureTf32(false);
        return device;
    });

    public static Device Device => Resolved.Value;

    /// <summary>"cpu" or "cuda:N": the same device for ONNX Runtime (its CUDA execution provider on a GPU).</summary>
    public static string Name => TorchRuntime.Name(Device);

    /// <summary>The tensor on the test device (itself on the CPU default).</summary>
    public static Tensor On(this Tensor t) => Device.type == TorchSharp.DeviceType.CPU ? t : t.to(Device);

    /// <summary>The module on the test device.</summary>
    public static T OnDevice<T>(this T module) where T : nn.Module
    {
        if (Device.type != TorchSharp.DeviceType.CPU) module.to(Device);
        return module;
    }
}
