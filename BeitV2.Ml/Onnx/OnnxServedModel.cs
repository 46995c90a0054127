using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Serving;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// A model served by ONNX Runtime: one <see cref="InferenceSession"/> on the graph its exporter wrote (inputs and
/// outputs named as <see cref="OnnxNames"/> says), run through an <see cref="OrtIoBinding"/>. The input is bound over
/// the worker's own <see cref="ImageBatch"/> buffer (no copy), the outputs to CPU buffers allocated once for the largest
/// batch; each image's result is copied out of them once, into the same typed results the TorchSharp models return.
/// </summary>
/// <remarks>
/// Bound values are made once per batch size and kept (a pinned buffer never moves), so a batch costs the binding
/// calls and the run. One worker thread serves a model; the lock only keeps a stray concurrent caller from sharing
/// the binding.
/// </remarks>
public sealed class OnnxServedModel : ServedModel
{
    private readonly InferenceSession session;
    private readonly OrtIoBinding binding;
    private readonly RunOptions runOptions = new();
    private readonly Dictionary<string, BoundOutput> outputs = new(StringComparer.Ordinal);
    private readonly bool cuda;
    private readonly Lock sync = new();
    private ImageBatch? boundBatch;
    private OrtValue?[] inputs = [];

    /// <param name="session">the session (owned from here on: disposed with the model).</param>
    /// <param name="kind">the package's kind, for messages.</param>
    /// <param name="operations">what the model serves (its catalogue entry's operations), the main one first.</param>
    /// <param name="device">"cpu" or "cuda:N": where the session runs.</param>
    /// <exception cref="InvalidDataException">the graph lacks the input or an output the operations need, or has them with other types or shapes.</exception>
    /// <exception cref="CheckpointException">the preprocessing does not fit the graph's input size.</exception>
    public OnnxServedModel(InferenceSession session, string kind, IReadOnlyList<Operation> operations, ModelPreprocessing preprocessing,
        string device, OnnxPrecision precision)
        : base(preprocessing, InputSize(session, kind))
    {
        this.session = session;
        Kind = kind;
        Device = device;
        Precision = precision;
        cuda = OnnxDevices.CudaIndex(device) is not null;
        Operations = operations.Select(ServedOperations.Of).ToList();
        foreach (var op in operations)
            foreach (var (name, type) in OutputsOf(op))
                if (!outputs.ContainsKey(name)) outputs[name] = BoundOutput.For(session, kind, name, type);
        binding = session.CreateIoBinding();
    }

    /// <summary>The package's kind (vit_cls, …).</summary>
    public string Kind { get; }
    /// <summary>"cpu" or "cuda:N".</summary>
    public string Device { get; }
    public OnnxPrecision Precision { get; }
    /// <summary>The execution provider the session runs on.</summary>
    public string Provider => OnnxDevices.ProviderOf(Device);

    public override ServingEngine Engine => ServingEngine.Onnx;
    public override IReadOnlyList<ServedOperation> Operations { get; }
    public override string Description => $"{Kind} (ONNX)";

    /// <summary>The graph's outputs each operation reads, and their element types.</summary>
    public static IReadOnlyList<(string Name, TensorElementType Type)> OutputsOf(Operation operation) => operation switch
    {
        Operation.Features => [(OnnxNames.Cls, TensorElementType.Float), (OnnxNames.Mean, TensorElementType.Float)],
        // The pooled feature rides along with the answer: the out-of-domain score reads it without a second pass.
        Operation.Classify => [(OnnxNames.Probs, TensorElementType.Float), (OnnxNames.Mean, TensorElementType.Float)],
        Operation.Tokens => [(OnnxNames.TokenIds, TensorElementType.Int64)],
        Operation.Segment => [(OnnxNames.Classes, TensorElementType.Int64), (OnnxNames.Mean, TensorElementType.Float)],
        _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
    };

    public override FeaturesResult[] Features(ImageBatch batch) => Answer(batch, Operation.Features,
        (o, i) => new FeaturesResult(o[OnnxNames.Cls].FloatRow(i), o[OnnxNames.Mean].FloatRow(i)));

    public override ClassProbabilities[] Classify(ImageBatch batch) => Answer(batch, Operation.Classify,
        (o, i) => new ClassProbabilities(o[OnnxNames.Probs].FloatRow(i), o[OnnxNames.Mean].FloatRow(i)));

    public override TokensResult[] Tokens(ImageBatch batch) => Answer(batch, Operation.Tokens,
        (o, i) => new TokensResult(o[OnnxNames.TokenIds].LongRow(i)));

    public override ClassMap[] Segment(ImageBatch batch) => Answer(batch, Operation.Segment,
        (o, i) => new ClassMap(o[OnnxNames.Classes].IntRow(i), Preprocessing.InputSize, Preprocessing.InputSize, o[OnnxNames.Mean].FloatRow(i)));

    public override void Dispose()
    {
        lock (sync)
        {
            foreach (var v in inputs) v?.Dispose();
            foreach (var o in outputs.Values) o.Dispose();
            binding.Dispose();
            runOptions.Dispose();
            session.Dispose();
        }
    }

    /// <summary>Runs <paramref name="operation"/> on the batch and reads each image's result from the bound outputs (one batch at a time).</summary>
    private T[] Answer<T>(ImageBatch batch, Operation operation, Func<IReadOnlyDictionary<string, BoundOutput>, int, T> row)
    {
        Require(operation);
        lock (sync)
        {
            Run(batch, operation);
            return PerImage(batch.Count, i => row(outputs, i));
        }
    }

    private void Require(Operation operation)
    {
        if (!Operations.Any(o => o.Operation == operation)) throw Unsupported(operation);
    }

    private void Run(ImageBatch batch, Operation operation)
    {
        if (batch.Size != Preprocessing.InputSize)
            throw new ArgumentException($"A batch of {batch.Size} px images for a model of {Preprocessing.InputSize} px.", nameof(batch));
        if (!ReferenceEquals(batch, boundBatch))
        {
            // A new buffer (the first batch, or a worker with another capacity): values over the old one are stale.
            foreach (var v in inputs) v?.Dispose();
            inputs = new OrtValue?[batch.Capacity + 1];
            boundBatch = batch;
        }
        var count = batch.Count;
        var input = inputs[count] ??= OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, batch.Memory, batch.Shape);
        binding.ClearBoundInputs();
        binding.ClearBoundOutputs();
        binding.BindInput(OnnxNames.Images, input);
        foreach (var (name, _) in OutputsOf(operation)) binding.BindOutput(name, outputs[name].Value(batch.Capacity, count));
        session.RunWithBinding(runOptions, binding);
        if (cuda) binding.SynchronizeBoundOutputs();
    }

    private static T[] PerImage<T>(int count, Func<int, T> row)
    {
        var result = new T[count];
        for (var i = 0; i < count; i++) result[i] = row(i);
        return result;
    }

    private static int InputSize(InferenceSession session, string kind)
    {
        if (!session.InputMetadata.TryGetValue(OnnxNames.Images, out var meta))
            throw new InvalidDataException($"The {kind} graph has no '{OnnxNames.Images}' input (it has {string.Join(", ", session.InputMetadata.Keys)}).");
        var d = meta.Dimensions;
        if (meta.ElementDataType != TensorElementType.Float || d.Length != 4 || d[1] != 3 || d[2] <= 0 || d[2] != d[3])
            throw new InvalidDataException($"The {kind} graph's '{OnnxNames.Images}' input is {meta.ElementDataType} [{string.Join(", ", d)}], not float (B, 3, S, S).");
        return d[2];
    }

    /// <summary>One graph output bound to a CPU buffer for the largest batch; values per batch size over its first rows.</summary>
    private sealed class BoundOutput : IDisposable
    {
        private readonly long[] dims;     // per image (the batch axis dropped)
        private readonly int perImage;
        private readonly TensorElementType type;
        private float[] floats = [];
        private long[] longs = [];
        private OrtValue?[] values = [];
        private int capacity;

        private BoundOutput(long[] dims, TensorElementType type)
        {
            this.dims = dims;
            this.type = type;
            perImage = checked((int)dims.Aggregate(1L, (a, b) => a * b));
        }

        public static BoundOutput For(InferenceSession session, string kind, string name, TensorElementType type)
        {
            if (!session.OutputMetadata.TryGetValue(name, out var meta))
                throw new InvalidDataException($"The {kind} graph has no '{name}' output (it has {string.Join(", ", session.OutputMetadata.Keys)}).");
            var d = meta.Dimensions;
            if (meta.ElementDataType != type || d.Length < 2 || d.Skip(1).Any(x => x <= 0))
                throw new InvalidDataException(
                    $"The {kind} graph's '{name}' output is {meta.ElementDataType} [{string.Join(", ", d)}], not {type} (B, …) with fixed sizes after the batch.");
            return new BoundOutput(d.Skip(1).Select(x => (long)x).ToArray(), type);
        }

        /// <summary>The value for the first <paramref name="count"/> rows (buffers grown to <paramref name="batchCapacity"/> on first use).</summary>
        public OrtValue Value(int batchCapacity, int count)
        {
            if (batchCapacity != capacity)
            {
                foreach (var v in values) v?.Dispose();
                values = new OrtValue?[batchCapacity + 1];
                capacity = batchCapacity;
                if (type == TensorElementType.Float) floats = GC.AllocateUninitializedArray<float>(checked(batchCapacity * perImage), pinned: true);
                else longs = GC.AllocateUninitializedArray<long>(checked(batchCapacity * perImage), pinned: true);
            }
            long[] shape = [count, .. dims];
            return values[count] ??= type == TensorElementType.Float
                ? OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, floats.AsMemory(0, count * perImage), shape)
                : OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, longs.AsMemory(0, count * perImage), shape);
        }

        public float[] FloatRow(int i) => floats.AsSpan(i * perImage, perImage).ToArray();
        public long[] LongRow(int i) => longs.AsSpan(i * perImage, perImage).ToArray();

        /// <summary>An int64 row as int32 (class indices: small).</summary>
        public int[] IntRow(int i)
        {
            var row = longs.AsSpan(i * perImage, perImage);
            var result = new int[perImage];
            for (var j = 0; j < result.Length; j++) result[j] = checked((int)row[j]);
            return result;
        }

        public void Dispose()
        {
            foreach (var v in values) v?.Dispose();
        }
    }
}
