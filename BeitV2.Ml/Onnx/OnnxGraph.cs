using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// A small builder over the ONNX protobuf messages (OnnxSharp's generated <c>Onnx.*</c> types): nodes, constant
/// initializers, typed graph inputs and outputs. Exporters write a model's graph with it, op by op, at opset
/// <see cref="Opset"/>; names of initializers are the state-dict keys where one tensor maps to one key.
/// </summary>
public sealed class OnnxGraph
{
    /// <summary>The default-domain opset the exporters write (no Gelu: that is opset 20; GELU is written with Erf).</summary>
    public const int Opset = 17;

    private readonly GraphProto graph;
    private readonly HashSet<string> initializers = new(StringComparer.Ordinal);
    private int counter;

    public OnnxGraph(string name) => graph = new GraphProto { Name = name };

    /// <summary>
    /// Largest relative position bias (H·T·T floats per block) stored as a constant; larger ones are gathered from their
    /// table at run time (<see cref="VitTrunkOnnx"/>). The TorchSharp path caches biases up to the same size.
    /// </summary>
    public long ConstantBiasLimit { get; init; } = Models.Layers.InferenceBiasCache.MaxElements;

    /// <summary>Whether any node uses the <c>com.microsoft</c> domain (the model then imports it).</summary>
    public bool UsesMicrosoftDomain { get; private set; }

    /// <summary>A new value name, unique in this graph.</summary>
    public string Fresh(string hint) => $"{hint}_{counter++}";

    public bool HasInitializer(string name) => initializers.Contains(name);

    /// <summary>A float32 constant from a tensor (copied as float32, contiguous; the tensor is not disposed).</summary>
    public string Initializer(string name, Tensor tensor)
    {
        using var c = tensor.detach().cpu().to_type(ScalarType.Float32).contiguous();
        return Initializer(name, c.data<float>().ToArray(), c.shape);
    }

    /// <summary>A float32 constant of shape <paramref name="dims"/> (the array is wrapped, not copied: do not change it afterwards).</summary>
    public string Initializer(string name, float[] data, params long[] dims)
    {
        if (dims.Aggregate(1L, (a, b) => a * b) != data.Length)
            throw new ArgumentException($"{name}: {data.Length} values for [{string.Join(",", dims)}].");
        var bytes = new byte[data.Length * sizeof(float)];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        return Raw(name, TensorProto.Types.DataType.Float, bytes, dims);
    }

    /// <summary>An int64 vector constant (shapes, axes, split sizes).</summary>
    public string Int64s(string name, params long[] data)
    {
        if (HasInitializer(name)) return name;
        var bytes = new byte[data.Length * sizeof(long)];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        return Raw(name, TensorProto.Types.DataType.Int64, bytes, data.Length);
    }

    /// <summary>A 0-d int64 constant (a <c>Gather</c> with a scalar index drops the axis).</summary>
    public string Int64Scalar(string name, long value) =>
        HasInitializer(name) ? name : Raw(name, TensorProto.Types.DataType.Int64, BitConverter.GetBytes(value));

    /// <summary>A 1-element float constant (broadcasts in element-wise ops).</summary>
    public string Scalar(string name, float value) => HasInitializer(name) ? name : Initializer(name, new[] { value }, 1);

    /// <summary>A constant of any element type from its little-endian bytes (<paramref name="bytes"/> is wrapped, not copied).</summary>
    public string Raw(string name, TensorProto.Types.DataType type, byte[] bytes, params long[] dims)
    {
        if (!initializers.Add(name)) throw new ArgumentException($"The initializer '{name}' is defined twice.", nameof(name));
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = UnsafeByteOperations.UnsafeWrap(bytes) };
        t.Dims.AddRange(dims);
        graph.Initializer.Add(t);
        return name;
    }

    /// <summary>One node with one output; its name is <paramref name="output"/> or a fresh one.</summary>
    public string Node(string op, string[] inputs, string? output = null, string domain = "", params AttributeProto[] attrs) =>
        NodeMulti(op, inputs, 1, output is null ? null : new[] { output }, domain, attrs)[0];

    /// <summary>One node with several outputs (an empty name skips an optional output).</summary>
    public string[] NodeMulti(string op, string[] inputs, int outputs, string[]? names = null, string domain = "", params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Domain = domain, Name = Fresh(op) };
        n.Input.AddRange(inputs);
        var outs = names ?? Enumerable.Range(0, outputs).Select(_ => Fresh(op.ToLowerInvariant())).ToArray();
        n.Output.AddRange(outs);
        n.Attribute.AddRange(attrs);
        graph.Node.Add(n);
        if (domain == "com.microsoft") UsesMicrosoftDomain = true;
        return outs;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    public static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
    public static AttributeProto String(string name, string v) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };
    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }
    public static AttributeProto Floats(string name, params float[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.AddRange(v);
        return a;
    }

    /// <summary>A graph input; a null dim is the symbolic batch dimension.</summary>
    public void Input(string name, long?[] dims, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float) =>
        graph.Input.Add(ValueInfo(name, dims, type));

    /// <summary>A graph output (the value <paramref name="name"/> must be produced by a node); a null dim is the batch.</summary>
    public void Output(string name, long?[] dims, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float) =>
        graph.Output.Add(ValueInfo(name, dims, type));

    /// <summary>Makes the value <paramref name="value"/> a graph output named <paramref name="name"/> (via Identity when renamed).</summary>
    public void OutputAs(string value, string name, long?[] dims, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        if (value != name) Node("Identity", new[] { value }, name);
        Output(name, dims, type);
    }

    private static ValueInfoProto ValueInfo(string name, long?[] dims, TensorProto.Types.DataType type)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is { } v
                ? new TensorShapeProto.Types.Dimension { DimValue = v }
                : new TensorShapeProto.Types.Dimension { DimParam = OnnxNames.BatchDim });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    /// <summary>The finished model (IR 8, opset <see cref="Opset"/>, plus <c>com.microsoft</c> 1 when used).</summary>
    public ModelProto ToModel(string docString = "")
    {
        var m = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "BeitV2",
            ProducerVersion = typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = docString,
            Graph = graph,
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        if (UsesMicrosoftDomain) m.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        return m;
    }
}
