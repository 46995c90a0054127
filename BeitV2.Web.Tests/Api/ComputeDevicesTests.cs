using BeitV2.Ml.Precision;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Api;

/// <summary><c>Ml:*</c> resolved into devices, precision, training devices and gates (on a machine without CUDA).</summary>
public sealed class ComputeDevicesTests
{
    private static ComputeDevices Make(string device = "cpu", string precision = "fp32", string? training = null) =>
        new(Options.Create(new MlOptions { Device = device, InferencePrecision = precision, TrainingDevices = training, Threads = get_num_threads() }),
            NullLogger<ComputeDevices>.Instance);

    [Theory]
    [InlineData("cpu")]
    [InlineData("auto")]
    public void Cpu_OneTrainingWorker_OpenGates(string device)
    {
        if (cuda.is_available()) return; // this suite's CPU build never has CUDA; on a GPU machine "auto" means cuda:0
        var d = Make(device);
        Assert.Equal("cpu", d.InferenceDeviceName);
        Assert.Equal(new[] { "cpu" }, d.TrainingDevices);
        Assert.False(d.TrainingOnCuda);
        Assert.False(d.Gate("cpu").Enabled);
        Assert.Equal(ComputePrecision.Fp32, d.InferencePrecision);
        Assert.False(d.Describe().GpuSharing);
    }

    [Fact]
    public void Leases_CountRunningJobs_AndRelease()
    {
        var d = Make(training: "cpu");
        var a = d.LeaseTrainingDevice();
        var b = d.LeaseTrainingDevice();    // Jobs:Workers above the device count: jobs share the device
        Assert.Equal("cpu", a.Device);
        Assert.Same(d.Gate("cpu"), a.Gate);
        Assert.Equal(2, d.Leases["cpu"]);
        a.Dispose();
        a.Dispose();
        Assert.Equal(1, d.Leases["cpu"]);
        b.Dispose();
        Assert.Equal(0, d.Leases["cpu"]);
    }

    [Fact]
    public void Bf16Inference_IsAllowedOnTheCpu() => Assert.Equal(ComputePrecision.Bf16, Make(precision: "bf16").InferencePrecision);

    [Fact]
    public void Fp16Inference_OnTheCpu_FailsAtStartWithAHint()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Make(precision: "fp16"));
        Assert.Contains("requires a CUDA device", e.Message);
        Assert.Contains("bf16", e.Message);
    }

    [Fact]
    public void UnknownPrecision_FailsAtStart() =>
        Assert.Contains("Ml:InferencePrecision", Assert.Throws<InvalidOperationException>(() => Make(precision: "int4")).Message);

    [Theory]
    [InlineData("cuda:0")]
    [InlineData("cpu,cuda:1")]
    public void CudaTrainingDevices_WithoutCuda_FailAtStart(string training)
    {
        if (cuda.is_available()) return;
        var e = Assert.Throws<InvalidOperationException>(() => Make(training: training));
        Assert.Contains("CUDA is not available", e.Message);
    }

    [Fact]
    public void AutoInTrainingDevices_IsRejected() =>
        Assert.Contains("not auto", Assert.Throws<InvalidOperationException>(() => Make(training: "auto")).Message);
}
