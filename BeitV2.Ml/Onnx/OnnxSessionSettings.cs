using Microsoft.ML.OnnxRuntime;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// How ONNX Runtime sessions are made for serving (<c>Inference:Onnx:*</c>); one session per loaded model, each with
/// its own thread pool. The defaults are ONNX Runtime's, except the thread count (see <see cref="IntraOpThreads"/>).
/// </summary>
public sealed record OnnxSessionSettings
{
    /// <summary>Threads of one session's intra-op pool; 0 = the caller's default (<c>Ml:Threads</c>, else ONNX Runtime's: one per physical core).</summary>
    public int IntraOpThreads { get; init; }
    /// <summary>Threads for running independent graph branches in parallel; sequential execution (the default) uses none.</summary>
    public int InterOpThreads { get; init; } = 1;
    /// <summary>
    /// ONNX Runtime's CPU memory arena (reuse of activation buffers; it keeps its peak until the session is disposed). Off by
    /// default: with the Base classifier, tokenizer and segmenter warmed up at batch 8 a server held 8995 MiB with it and
    /// 2755 MiB without (peak 5850 MiB), for ≤ 7 % per image at batch 8 and no change at batch 1 (README, "Serving engine").
    /// </summary>
    public bool Arena { get; init; }
    /// <summary><c>disable</c>, <c>basic</c>, <c>extended</c> or <c>all</c> (the default: also layout-specific CPU kernels).</summary>
    public string GraphOptimization { get; init; } = "all";
    /// <summary>
    /// Pre-packed GEMM weights (a second, kernel-friendly copy of every MatMul weight). Off saved ~220 MB per ViT-B
    /// session in the feasibility probe (docs/notes/onnx-probe-2026-12.md, section 5); its speed effect is small there.
    /// </summary>
    public bool Prepacking { get; init; } = true;
    /// <summary>Whether idle intra-op threads spin before sleeping (ONNX Runtime's default); off frees the cores for other work sooner.</summary>
    public bool AllowSpinning { get; init; } = true;
    /// <summary>
    /// int8 GEMM kernels of int8 graphs on x64 CPUs: <c>fast</c> = u8·s8 (the int8 graphs' weights as written), <c>exact</c> =
    /// u8·u8 (ONNX Runtime's <c>session.x64quantprecision</c>: its u8·s8 kernels on SSE4.1/AVX2/AVX-512 without VNNI add
    /// two products in a saturating 16-bit lane, 255·127·2 &gt; 32767, so results can clip there), <c>auto</c> (the default)
    /// = fast where the CPU has VNNI (no 16-bit step), exact elsewhere. Measured on an AVX-512 VNNI EPYC: exact is ~1.9×
    /// slower than fast at ViT-B batch 8, still faster than float32.
    /// </summary>
    public string Int8Kernels { get; init; } = "auto";

    public static bool TryParseLevel(string? text, out GraphOptimizationLevel level)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "disable" or "none": level = GraphOptimizationLevel.ORT_DISABLE_ALL; return true;
            case "basic": level = GraphOptimizationLevel.ORT_ENABLE_BASIC; return true;
            case "extended": level = GraphOptimizationLevel.ORT_ENABLE_EXTENDED; return true;
            case null or "" or "all": level = GraphOptimizationLevel.ORT_ENABLE_ALL; return true;
            default: level = default; return false;
        }
    }

    /// <summary>Checks the values (at start-up, before any model loads).</summary>
    /// <exception cref="ArgumentException">a value that ONNX Runtime would refuse or misread.</exception>
    public void Validate()
    {
        if (IntraOpThreads < 0) throw new ArgumentException($"Inference:Onnx:IntraOpThreads must be 0 (default) or more, not {IntraOpThreads}.");
        if (InterOpThreads < 0) throw new ArgumentException($"Inference:Onnx:InterOpThreads must be 0 (default) or more, not {InterOpThreads}.");
        if (Int8Kernels?.Trim().ToLowerInvariant() is not ("auto" or "fast" or "exact"))
            throw new ArgumentException($"Inference:Onnx:Int8Kernels '{Int8Kernels}' is not one of auto, fast, exact.");
        if (!TryParseLevel(GraphOptimization, out _))
            throw new ArgumentException($"Inference:Onnx:GraphOptimization '{GraphOptimization}' is not one of disable, basic, extended, all.");
    }

    /// <summary>Whether int8 GEMMs use the exact u8·u8 kernels (see <see cref="Int8Kernels"/>); no effect on float32 graphs.</summary>
    public bool ExactInt8Kernels => Int8Kernels.Trim().ToLowerInvariant() switch
    {
        "exact" => true,
        "fast" => false,
        _ => System.Runtime.Intrinsics.X86.X86Base.IsSupported && !CpuHasVnni.Value,
    };

    /// <summary>VNNI (AVX-512 VNNI or AVX-VNNI), from the kernel's CPU flags; false where they cannot be read.</summary>
    private static readonly Lazy<bool> CpuHasVnni = new(() =>
    {
        if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) return true;
        try
        {
            return File.ReadLines("/proc/cpuinfo").Any(l => l.StartsWith("flags", StringComparison.Ordinal)
                && (l.Contains(" avx512_vnni", StringComparison.Ordinal) || l.Contains(" avx_vnni", StringComparison.Ordinal)));
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    });

    /// <summary>Session options for a model served on <paramref name="device"/> ("cpu" or "cuda:N").</summary>
    /// <param name="defaultThreads">intra-op threads when <see cref="IntraOpThreads"/> is 0 (0: ONNX Runtime's default).</param>
    /// <param name="tf32">CUDA only: TF32 math for float32 MatMul/Conv (ONNX Runtime's CUDA provider turns it on unless told).</param>
    /// <exception cref="InvalidOperationException">CUDA asked of a build whose ONNX Runtime has no CUDA provider.</exception>
    public SessionOptions Create(string device, int defaultThreads = 0, bool tf32 = false)
    {
        Validate();
        TryParseLevel(GraphOptimization, out var level);
        var cuda = OnnxDevices.CudaIndex(device);
        var options = new SessionOptions
        {
            GraphOptimizationLevel = level,
            IntraOpNumThreads = IntraOpThreads > 0 ? IntraOpThreads : Math.Max(0, defaultThreads),
            InterOpNumThreads = InterOpThreads,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            EnableCpuMemArena = Arena,
        };
        try
        {
            if (!Prepacking) options.AddSessionConfigEntry("session.disable_prepacking", "1");
            if (!AllowSpinning) options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
            if (ExactInt8Kernels) options.AddSessionConfigEntry("session.x64quantprecision", "1");
            if (cuda is { } index)
            {
                OnnxDevices.RequireCuda(device);
                using var provider = new OrtCUDAProviderOptions();
                provider.UpdateOptions(new Dictionary<string, string>
                {
                    ["device_id"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    // float32 results stay within the parity tolerance only without TF32 (as Ml:AllowTf32 for libtorch).
                    ["use_tf32"] = tf32 ? "1" : "0",
                });
                options.AppendExecutionProvider_CUDA(provider);
            }
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }
}

/// <summary>Which ONNX Runtime execution provider a device name stands for.</summary>
public static class OnnxDevices
{
    public const string CudaProvider = "CUDAExecutionProvider";

    /// <summary>N of "cuda:N" ("cuda" = 0); null for "cpu".</summary>
    /// <exception cref="ArgumentException">neither.</exception>
    public static int? CudaIndex(string device)
    {
        var d = device.Trim().ToLowerInvariant();
        if (d == "cpu") return null;
        if (d == "cuda") return 0;
        if (d.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(d.AsSpan(5), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var index))
            return index;
        throw new ArgumentException($"ONNX Runtime serves on cpu or cuda:N, not '{device}'.", nameof(device));
    }

    /// <summary>The execution providers this build's ONNX Runtime was compiled with (the CPU package: CPU only).</summary>
    public static IReadOnlyList<string> Available() => OrtEnv.Instance().GetAvailableProviders();

    /// <summary>The provider name of a device: <c>CPUExecutionProvider</c> or <c>CUDAExecutionProvider</c>.</summary>
    public static string ProviderOf(string device) => CudaIndex(device) is null ? "CPUExecutionProvider" : CudaProvider;

    /// <exception cref="InvalidOperationException">this build's ONNX Runtime has no CUDA provider.</exception>
    public static void RequireCuda(string device)
    {
        if (CudaIndex(device) is null || Available().Contains(CudaProvider)) return;
        throw new InvalidOperationException(
            $"Ml:Device={device} with Inference:Engine=onnx needs ONNX Runtime's CUDA execution provider, which this build does not have " +
            $"(it has {string.Join(", ", Available())}): build with -p:BeitV2Cuda=true (Microsoft.ML.OnnxRuntime.Gpu.Linux), " +
            "or serve on the CPU (Ml:Device=cpu), or use Inference:Engine=torch.");
    }
}
