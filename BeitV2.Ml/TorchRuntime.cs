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
    /// <summary>Resolves "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".</summary>
    public static Device ResolveDevice(string? spec)
    {
        var s = string.IsNullOrWhiteSpace(spec) ? "auto" : spec.Trim().ToLowerInvariant();
        if (s == "auto") return cuda.is_available() ? CUDA : CPU;
        if (s == "cpu") return CPU;
        if (s.StartsWith("cuda"))
        {
            if (!cuda.is_available())
                throw new InvalidOperationException(
                    $"Device '{spec}' was requested but CUDA is not available in this build/process " +
                    "(the default build uses the CPU libtorch; build with -p:BeitV2Cuda=true on a CUDA machine).");
            return torch.device(s);
        }
        throw new ArgumentException($"Unknown device '{spec}'. Use auto, cpu, cuda or cuda:N.", nameof(spec));
    }

    /// <summary>Sets libtorch's intra-op thread count (process-wide). 0 or less keeps libtorch's default.</summary>
    public static void ConfigureThreads(int threads)
    {
        if (threads > 0) set_num_threads(threads);
    }

    public static object Describe() => new
    {
        torchSharp = typeof(torch).Assembly.GetName().Version?.ToString(),
        cudaAvailable = cuda.is_available(),
        threads = get_num_threads(),
    };
}
