using static TorchSharp.torch;

namespace BeitV2.Ml.Precision;

/// <summary>The compute precision of a forward pass: float32, or matmul-heavy ops in bfloat16 / float16.</summary>
public enum ComputePrecision
{
    /// <summary>Everything in float32 (the default; the parity tests always run this way).</summary>
    Fp32,
    /// <summary>Linear layers, attention matmuls and convolutions in bfloat16; normalisation, softmax and losses in float32. No loss scaling needed.</summary>
    Bf16,
    /// <summary>As <see cref="Bf16"/> with float16; training needs dynamic loss scaling (<see cref="DynamicLossScaler"/>). CUDA only in the service.</summary>
    Fp16,
}

/// <summary>Names of <see cref="ComputePrecision"/> in configuration and JSON ("fp32", "bf16", "fp16").</summary>
public static class ComputePrecisions
{
    /// <summary>Accepted spellings, first the canonical ones.</summary>
    public static readonly IReadOnlyList<string> Names = new[] { "fp32", "bf16", "fp16" };

    /// <summary>Parses "fp32" (also "none", "float32", "off", empty), "bf16" ("bfloat16") or "fp16" ("float16", "half").</summary>
    public static ComputePrecision Parse(string? value)
    {
        if (TryParse(value, out var p)) return p;
        throw new ArgumentException($"Unknown precision '{value}'. Use fp32 (or none), bf16 or fp16.", nameof(value));
    }

    public static bool TryParse(string? value, out ComputePrecision precision)
    {
        var s = value?.Trim().ToLowerInvariant();
        switch (s)
        {
            case null or "" or "fp32" or "float32" or "none" or "off":
                precision = ComputePrecision.Fp32;
                return true;
            case "bf16" or "bfloat16":
                precision = ComputePrecision.Bf16;
                return true;
            case "fp16" or "float16" or "half":
                precision = ComputePrecision.Fp16;
                return true;
            default:
                precision = ComputePrecision.Fp32;
                return false;
        }
    }

    /// <summary>"fp32", "bf16" or "fp16".</summary>
    public static string Name(this ComputePrecision p) => p switch
    {
        ComputePrecision.Bf16 => "bf16",
        ComputePrecision.Fp16 => "fp16",
        _ => "fp32",
    };

    /// <summary>The low-precision dtype of the autocast region, null for float32.</summary>
    public static ScalarType? ComputeType(this ComputePrecision p) => p switch
    {
        ComputePrecision.Bf16 => ScalarType.BFloat16,
        ComputePrecision.Fp16 => ScalarType.Float16,
        _ => null,
    };
}
