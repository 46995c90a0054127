using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Ml.Training;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The job config's <c>mixedPrecision</c> on a CPU server: fp16 is refused at submission, bf16 trains.</summary>
[Collection(JobsCollection.Name)]
public sealed class DeviceAwareJobsTests
{
    [Fact]
    public async Task MixedPrecision_Fp16NeedsCuda_Bf16TrainsOnTheCpu()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();

        var fp16 = await client.PostAsJsonAsync("/api/v1/jobs",
            new { type = "finetune", dataset = "fashion-mnist", config = new { mixedPrecision = "fp16" } }).ProblemAsync(400);
        Assert.Contains("requires a CUDA device", fp16);
        Assert.Contains("bf16", fp16);
        await client.PostAsJsonAsync("/api/v1/jobs",
            new { type = "finetune", dataset = "fashion-mnist", config = new { mixedPrecision = true } }).ProblemAsync(400);   // true = fp16
        var bad = await client.PostAsJsonAsync("/api/v1/jobs",
            new { type = "finetune", dataset = "fashion-mnist", config = new { mixedPrecision = "int8" } }).ProblemAsync(400);
        Assert.Contains("config.mixedPrecision", bad);

        var id = await Jobs.StartAsync(client, new
        {
            type = "finetune", dataset = "fashion-mnist",
            config = new { epochs = 1, batchSize = 16, maxTrainImages = 64, maxValImages = 32, mixedPrecision = "bf16" },
        });
        var job = await Jobs.WaitAsync(client, id, Jobs.Patience, "succeeded");
        var checkpoint = Path.Combine(host.DataDirectory, job.Items("checkpoints").Last().Str("path"));
        var state = TrainingCheckpoint.ReadState(checkpoint);
        Assert.Equal("bf16", state.Precision);
        Assert.Null(state.LossScale);
        Assert.True(double.IsFinite(job.GetProperty("lastMetrics").GetProperty("loss").GetDouble()));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Info_ReportsComputeDevices()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var info = await client.GetAsync("/api/v1/info").JsonAsync();
        Assert.Equal("cpu", info.Str("device"));
        var compute = info.GetProperty("compute");
        Assert.Equal("cpu", compute.Str("device"));
        Assert.Equal("cpu", compute.Str("deviceType"));
        Assert.Equal("fp32", compute.Str("inferencePrecision"));
        Assert.False(compute.GetProperty("cudaAvailable").GetBoolean());
        Assert.Equal(0, compute.Int("cudaDeviceCount"));
        Assert.False(compute.GetProperty("tf32").GetBoolean());
        Assert.Equal(new[] { "cpu" }, compute.Items("trainingDevices").Select(d => d.GetString()));
        Assert.Equal(0, compute.GetProperty("runningJobsPerDevice").GetProperty("cpu").GetInt32());
        Assert.False(compute.GetProperty("gpuSharing").GetBoolean());
    }
}
