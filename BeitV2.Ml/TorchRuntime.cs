using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml;

/// <summary>
/// The one device switch of the library: every model, trainer and service asks this class which
/// device to use, so that "cpu", "cuda", "cuda:1" or "auto" in configuration is the only thing that
/// differs between a laptop and the GPU server.
/// </summary>
public static class TorchRuntime
{
    /// <summary>
    /// Resolves "auto" (cuda:0 when CUDA is available, else CPU), "cpu", "cuda" (= cuda:0) or "cuda:N"
    /// (N must be below the device count). The result always names a concrete device index on CUDA.
    /// </summary>
    public static Device ResolveDevice(string? spec)
    {
        var s = Normalize(spec);
        if (s == "auto") return cuda.is_available() ? torch.device(DeviceType.CUDA, 0) : CPU;
        if (s == "cpu") return CPU;
        var index = ParseCudaIndex(spec, s);
        if (!cuda.is_available())
            throw new InvalidOperationException(
                $"Device '{spec}' was requested but CUDA is not available in this build/process " +
                "(the default build uses the CPU libtorch; build with -p:BeitV2Cuda=true on a CUDA machine).");
        var count = cuda.device_count();
        if (index >= count)
            throw new InvalidOperationException($"Device '{spec}' was requested but this machine has {count} CUDA device(s) (cuda:0 … cuda:{count - 1}).");
        return torch.device(DeviceType.CUDA, index);
    }

    /// <summary>Checks the syntax of a device spec without touching CUDA (for configuration validation).</summary>
    public static void ValidateSpec(string? spec)
    {
        var s = Normalize(spec);
        if (s is not ("auto" or "cpu")) ParseCudaIndex(spec, s);
    }

    /// <summary>
    /// The CUDA devices a spec stands for, for one training worker each: "auto" and "cuda" → every
    /// visible GPU (none without CUDA), "cuda:N" → that one, "cpu" → none.
    /// </summary>
    public static IReadOnlyList<Device> CudaDevicesFor(string? spec)
    {
        var s = Normalize(spec);
        switch (s)
        {
            case "cpu":
                return Array.Empty<Device>();
            case "auto" when !cuda.is_available():
                return Array.Empty<Device>();
            case "auto" or "cuda":
                ResolveDevice(spec); // the helpful error when "cuda" is asked for without CUDA
                return Enumerable.Range(0, cuda.device_count()).Select(i => torch.device(DeviceType.CUDA, i)).ToList();
            default:
                return new[] { ResolveDevice(spec) };
        }
    }

    /// <summary>A device's canonical name: "cpu" or "cuda:N".</summary>
    public static string Name(Device device) =>
        device.type == DeviceType.CUDA ? $"cuda:{Math.Max(0, device.index)}" : device.type.ToString().ToLowerInvariant();

    /// <summary>Sets libtorch's intra-op thread count (process-wide). 0 or less keeps libtorch's default.</summary>
    public static void ConfigureThreads(int threads)
    {
        if (threads > 0) set_num_threads(threads);
    }

    /// <summary>
    /// TF32 tensor-core math for float32 matmuls and convolutions on Ampere and newer GPUs
    /// (<c>torch.backends.cuda.matmul.allow_tf32</c> and <c>torch.backends.cudnn.allow_tf32</c>).
    /// Off keeps float32 results within the parity tolerance; mixed precision is the faster and
    /// explicit way to trade precision for speed. No effect without CUDA.
    /// </summary>
    public static void ConfigureTf32(bool allow)
    {
        if (!cuda.is_available()) return;
        backends.cuda.matmul.allow_tf32 = allow;
        backends.cudnn.allow_tf32 = allow;
    }

    /// <summary>Whether TF32 is on for matmuls (false without CUDA).</summary>
    public static bool Tf32Enabled => cuda.is_available() && backends.cuda.matmul.allow_tf32;

    /// <summary>Waits for the device's queued kernels (a no-op on the CPU); for timing.</summary>
    public static void Synchronize(Device device)
    {
        if (device.type == DeviceType.CUDA) cuda.synchronize(device);
    }

    public static object Describe() => new
    {
        torchSharp = typeof(torch).Assembly.GetName().Version?.ToString(),
        cudaAvailable = cuda.is_available(),
        cudaDeviceCount = cuda.is_available() ? cuda.device_count() : 0,
        threads = get_num_threads(),
    };

    private static string Normalize(string? spec) => string.IsNullOrWhiteSpace(spec) ? "auto" : spec.Trim().ToLowerInvariant();

    private static int ParseCudaIndex(string? spec, string s)
    {
        if (s == "cuda") return 0;
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var index))
            return index;
        throw new ArgumentException($"Unknown device '{spec}'. Use auto, cpu, cuda or cuda:N.", nameof(spec));
    }
}
