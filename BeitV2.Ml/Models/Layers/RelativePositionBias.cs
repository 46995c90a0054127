using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// The model-wide shared relative position bias (<c>rel_pos_bias.relative_position_bias_table</c>),
/// used by the MIM pretraining models: computed once per forward and added in every block.
/// Per-layer tables live in <see cref="Attention"/> and use the same lookup.
/// </summary>
public sealed class RelativePositionBias : ExplicitModule
{
    public const string TableName = "relative_position_bias_table";
    public const string IndexName = "relative_position_index";

    public (int H, int W) Window { get; }

    public RelativePositionBias((int H, int W) window, int numHeads) : base(nameof(RelativePositionBias))
    {
        Window = window;
        Register(this, window, numHeads);
    }

    /// <summary>
    /// Registers a zero-initialised table (the reference's trunc-normal init is commented out) and
    /// the index on <paramref name="module"/>. The index is a pure function of the window, so it is
    /// kept out of the state dict; loaders ignore the copy that official checkpoints store.
    /// </summary>
    internal static void Register(nn.Module module, (int H, int W) window, int numHeads)
    {
        module.register_parameter(TableName, ModuleExtensions.Param(zeros(RelativePositionIndex.TableRows(window.H, window.W), numHeads)));
        int t = window.H * window.W + 1;
        module.register_buffer(IndexName, tensor(RelativePositionIndex.Build(window.H, window.W), new long[] { t, t }, dtype: int64), persistent: false);
    }

    /// <summary>table[index] viewed as (T, T, H) and permuted to the (H, T, T) attention bias.</summary>
    internal static Tensor Lookup(nn.Module module, (int H, int W) window)
    {
        using var scope = NewDisposeScope();
        var table = module.get_parameter(TableName)!;
        var index = IndexOn(module, table.device);
        int t = window.H * window.W + 1;
        var bias = table.index_select(0, index.view(-1)).view(t, t, -1).permute(2, 0, 1).contiguous();
        return bias.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The index on the table's device. TorchSharp's <c>Module.to(device)</c> does not move
    /// non-persistent buffers, so on a GPU the CPU index would be copied host→device in every forward
    /// of every block (a synchronising copy); the device copy is made once per module and device and kept.
    /// </summary>
    private static Tensor IndexOn(nn.Module module, Device device)
    {
        var index = module.get_buffer(IndexName)!;
        if (SameDevice(index.device, device)) return index;
        var cached = DeviceIndices.GetOrCreateValue(module);
        lock (cached)
        {
            if (cached.Index is { IsInvalid: false } t && SameDevice(t.device, device)) return t;
            var moved = index.to(device);
            moved.DetachFromDisposeScope();
            cached.Index?.Dispose();
            cached.Index = moved;
            return moved;
        }
    }

    private static bool SameDevice(Device a, Device b) =>
        a.type == b.type && (a.type != TorchSharp.DeviceType.CUDA || Math.Max(0, a.index) == Math.Max(0, b.index));

    private sealed class DeviceIndex
    {
        public Tensor? Index;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<nn.Module, DeviceIndex> DeviceIndices = new();

    /// <summary>The (H, T, T) bias; T = Wh·Ww + 1.</summary>
    public Tensor forward() => Lookup(this, Window);
}
