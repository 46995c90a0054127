using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Precision;

/// <summary>
/// Mixed precision for the library's own models. TorchSharp 0.107 binds neither <c>torch.autocast</c>
/// nor <c>GradScaler</c> (dotnet/TorchSharp issue 899 and PR 1235 are open), so the models call these
/// helpers at their matmul-heavy ops instead: inside <see cref="Enable"/> a linear layer, an attention
/// matmul or a convolution casts its inputs (and the float32 weights) to the region's dtype and
/// returns a low-precision result, as PyTorch's autocast does for its "lower precision" op list;
/// <see cref="Float32"/> brings a tensor back before what must stay in float32 (softmax, LayerNorm
/// inputs, BatchNorm, losses, the VQ-KD quantizer, model outputs).
/// </summary>
/// <remarks>
/// <para>Weights stay float32 (master weights); the casts are differentiable, so gradients reach the
/// float32 parameters in float32 and the optimiser state stays float32.</para>
/// <para>The residual stream stays float32: a float32 tensor plus a low-precision one promotes to
/// float32, so each block's branch output joins the stream in float32.</para>
/// <para>Outside a region every helper is exactly the plain float32 op (same call, no extra tensor),
/// so float32 results — and the strict parity tests — are unchanged.</para>
/// <para>The region is per thread ([ThreadStatic]): an inference worker and a training step on other
/// threads are unaffected by each other's precision.</para>
/// </remarks>
public static class Autocast
{
    [ThreadStatic] private static ScalarType? current;

    /// <summary>The low-precision dtype of the region this thread is in, or null (float32).</summary>
    public static ScalarType? Current => current;

    public static bool IsEnabled => current is not null;

    /// <summary>Enters a region of <paramref name="precision"/> (fp32 ends an enclosing region); disposing restores the previous state.</summary>
    public static IDisposable Enable(ComputePrecision precision)
    {
        var previous = current;
        current = precision.ComputeType();
        return new Region(previous);
    }

    /// <summary>A linear layer: <c>x Wᵀ + b</c>.</summary>
    public static Tensor Linear(Linear layer, Tensor x)
    {
        if (current is not { } dt) return layer.forward(x);
        return nn.functional.linear(Cast(x, dt), Cast(layer.weight!, dt), layer.bias is { } b ? Cast(b, dt) : null);
    }

    /// <summary><c>functional.linear</c> with explicit tensors.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        if (current is not { } dt) return nn.functional.linear(x, weight, bias);
        return nn.functional.linear(Cast(x, dt), Cast(weight, dt), bias is null ? null : Cast(bias, dt));
    }

    /// <summary>A matrix product.</summary>
    public static Tensor MatMul(Tensor a, Tensor b) => current is { } dt ? Cast(a, dt).matmul(Cast(b, dt)) : a.matmul(b);

    /// <summary>A 2-d convolution with zero padding (any other padding mode runs in float32).</summary>
    public static Tensor Conv(Conv2d conv, Tensor x)
    {
        if (current is not { } dt || conv.padding_mode != TorchSharp.PaddingModes.Zeros || conv.padding_type is not null)
            return conv.forward(Float32(x));
        return nn.functional.conv2d(Cast(x, dt), Cast(conv.weight!, dt), conv.bias is { } b ? Cast(b, dt) : null,
            conv.stride, conv.padding, conv.dilation, conv.groups);
    }

    /// <summary>Inside a region: <paramref name="x"/> in float32 (a no-op for float32 and integer tensors). Outside: <paramref name="x"/> itself.</summary>
    public static Tensor Float32(Tensor x) =>
        current is null || x.dtype == ScalarType.Float32 || !x.is_floating_point() ? x : x.to_type(ScalarType.Float32);

    private static Tensor Cast(Tensor t, ScalarType dt) => t.dtype == dt || !t.is_floating_point() ? t : t.to_type(dt);

    private sealed class Region(ScalarType? previous) : IDisposable
    {
        private bool disposed;

        public void Dispose()
        {
            if (disposed) return;
            disposed = true;
            current = previous;
        }
    }
}
