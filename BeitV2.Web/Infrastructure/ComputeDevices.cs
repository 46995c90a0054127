using BeitV2.Ml;
using BeitV2.Ml.Devices;
using BeitV2.Ml.Precision;
using BeitV2.Web.Configuration;
using Microsoft.Extensions.Options;
using TorchSharp;

namespace BeitV2.Web.Infrastructure;

/// <summary>
/// The service's devices, resolved once from <c>Ml:*</c>: where inference runs and in which
/// precision, which devices the training workers use (one worker per device), and the
/// <see cref="DeviceGate"/> of each device that inference batches and training steps share.
/// </summary>
/// <remarks>
/// Gates are enabled on CUDA devices only (see <see cref="DeviceGate"/> for why the CPU keeps
/// inference and training concurrent). A training job leases the least busy training device for its
/// run; with <c>Jobs:Workers</c> above the device count, jobs share devices.
/// </remarks>
public sealed class ComputeDevices
{
    private readonly Dictionary<string, DeviceGate> gates = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> leases = new(StringComparer.Ordinal);
    private readonly Lock sync = new();

    public ComputeDevices(IOptions<MlOptions> options, ILogger<ComputeDevices> logger)
    {
        var ml = options.Value;
        TorchRuntime.ConfigureThreads(ml.Threads > 0 ? ml.Threads : Environment.ProcessorCount);
        InferenceDevice = TorchRuntime.ResolveDevice(ml.Device);
        InferenceDeviceName = TorchRuntime.Name(InferenceDevice);
        if (!ComputePrecisions.TryParse(ml.InferencePrecision, out var precision))
            throw new InvalidOperationException($"Ml:InferencePrecision '{ml.InferencePrecision}' is not one of fp32, bf16, fp16.");
        if (precision == ComputePrecision.Fp16 && InferenceDevice.type != DeviceType.CUDA)
            throw new InvalidOperationException(
                $"Ml:InferencePrecision=fp16 requires a CUDA device (inference runs on {InferenceDeviceName}); use bf16 or fp32 on the CPU.");
        InferencePrecision = precision;
        TorchRuntime.ConfigureTf32(ml.AllowTf32);

        var training = string.IsNullOrWhiteSpace(ml.TrainingDevices)
            ? TorchRuntime.CudaDevicesFor(ml.Device).Select(TorchRuntime.Name).ToList()
            : ml.TrainingDevices.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(d => TorchRuntime.Name(TorchRuntime.ResolveDevice(d == "auto" ? throw new InvalidOperationException(
                    "Ml:TrainingDevices lists concrete devices (cpu, cuda:N), not auto.") : d)))
                .Distinct().ToList();
        if (training.Count == 0) training.Add(InferenceDeviceName);
        TrainingDevices = training;
        foreach (var name in training.Append(InferenceDeviceName).Distinct())
        {
            gates[name] = new DeviceGate(name, enabled: name.StartsWith("cuda", StringComparison.Ordinal));
            leases[name] = 0;
        }
        logger.LogInformation("Inference on {Device} ({Precision}); training devices {Training}; CUDA available: {Cuda}; TF32 {Tf32}",
            InferenceDeviceName, InferencePrecision.Name(), string.Join(", ", TrainingDevices), torch.cuda.is_available(), TorchRuntime.Tf32Enabled);
    }

    public torch.Device InferenceDevice { get; }
    /// <summary>"cpu" or "cuda:N".</summary>
    public string InferenceDeviceName { get; }
    public ComputePrecision InferencePrecision { get; }
    /// <summary>One training worker per entry.</summary>
    public IReadOnlyList<string> TrainingDevices { get; }
    public bool TrainingOnCuda => TrainingDevices.All(d => d.StartsWith("cuda", StringComparison.Ordinal));

    /// <summary>The gate of a device (created, disabled, for a device that is not configured).</summary>
    public DeviceGate Gate(string device)
    {
        lock (sync)
        {
            if (!gates.TryGetValue(device, out var gate))
                gates[device] = gate = new DeviceGate(device, enabled: device.StartsWith("cuda", StringComparison.Ordinal));
            return gate;
        }
    }

    /// <summary>Takes the training device with the fewest running jobs (the first on a tie) until the lease is disposed.</summary>
    public DeviceLease LeaseTrainingDevice()
    {
        lock (sync)
        {
            var device = TrainingDevices.MinBy(d => leases[d])!;
            leases[device]++;
            return new DeviceLease(this, device, Gate(device));
        }
    }

    private void Release(string device)
    {
        lock (sync) leases[device] = Math.Max(0, leases[device] - 1);
    }

    /// <summary>Running training jobs per training device.</summary>
    public IReadOnlyDictionary<string, int> Leases { get { lock (sync) return TrainingDevices.ToDictionary(d => d, d => leases[d]); } }

    /// <summary>What <c>/api/v1/info</c> reports.</summary>
    public ComputeInfo Describe() => new(
        InferenceDeviceName,
        InferenceDevice.type == DeviceType.CUDA ? "cuda" : "cpu",
        InferencePrecision.Name(),
        torch.cuda.is_available(),
        torch.cuda.is_available() ? torch.cuda.device_count() : 0,
        TorchRuntime.Tf32Enabled,
        TrainingDevices,
        Leases,
        GpuSharing);

    private bool GpuSharing { get { lock (sync) return gates.Values.Any(g => g.Enabled); } }

    /// <summary>A training job's device, released on dispose.</summary>
    public sealed class DeviceLease(ComputeDevices owner, string device, DeviceGate gate) : IDisposable
    {
        private int released;
        public string Device { get; } = device;
        public DeviceGate Gate { get; } = gate;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0) owner.Release(Device);
        }
    }
}

/// <summary>The <c>compute</c> part of <c>/api/v1/info</c>.</summary>
/// <param name="Device">the inference device, "cpu" or "cuda:N" (also the top-level <c>device</c> field).</param>
/// <param name="DeviceType">"cpu" or "cuda".</param>
/// <param name="InferencePrecision">fp32, bf16 or fp16.</param>
/// <param name="CudaAvailable">whether this build and machine can use CUDA.</param>
/// <param name="CudaDeviceCount">visible GPUs.</param>
/// <param name="Tf32">TF32 math for float32 on GPUs.</param>
/// <param name="TrainingDevices">one training worker per device.</param>
/// <param name="RunningJobsPerDevice">training jobs holding each training device now.</param>
/// <param name="GpuSharing">true when inference batches and training steps take turns on a GPU (the per-device gate).</param>
public sealed record ComputeInfo(string Device, string DeviceType, string InferencePrecision, bool CudaAvailable, int CudaDeviceCount,
    bool Tf32, IReadOnlyList<string> TrainingDevices, IReadOnlyDictionary<string, int> RunningJobsPerDevice, bool GpuSharing);
