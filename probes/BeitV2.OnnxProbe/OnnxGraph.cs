using Google.Protobuf;
using Onnx;

namespace BeitV2.OnnxProbe;

/// <summary>A tiny builder over OnnxSharp's generated protobuf messages: nodes, float/int64 initializers, typed inputs/outputs.</summary>
public sealed class OnnxGraph
{
    private readonly GraphProto graph = new() { Name = "beit" };
    private int counter;

    public string Fresh(string hint) => $"{hint}_{counter++}";

    public string Initializer(string name, float[] data, params long[] dims)
    {
        if (dims.Aggregate(1L, (a, b) => a * b) != data.Length) throw new ArgumentException($"{name}: {data.Length} values for [{string.Join(",", dims)}]");
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[data.Length * 4];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        t.RawData = UnsafeByteOperations.UnsafeWrap(bytes);   // no second copy of the weights
        graph.Initializer.Add(t);
        return name;
    }

    public string Int64s(string name, params long[] data)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(data.Length);
        var bytes = new byte[data.Length * 8];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        t.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
        graph.Initializer.Add(t);
        return name;
    }

    /// <summary>A 0-d int64 constant (for Gather with a scalar index, which drops the axis).</summary>
    public string Int64Scalar(string name, long value)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.RawData = ByteString.CopyFrom(BitConverter.GetBytes(value));
        graph.Initializer.Add(t);
        return name;
    }

    public string Scalar(string name, float value) => Initializer(name, new[] { value });

    public string Node(string op, string[] inputs, string? output = null, string domain = "", params AttributeProto[] attrs) =>
        NodeMulti(op, inputs, 1, output is null ? null : new[] { output }, domain, attrs)[0];

    public string[] NodeMulti(string op, string[] inputs, int outputs, string[]? names = null, string domain = "", params AttributeProto[] attrs)
    {
        var n = new NodeProto { OpType = op, Domain = domain, Name = Fresh(op) };
        n.Input.AddRange(inputs);
        var outs = names ?? Enumerable.Range(0, outputs).Select(_ => Fresh(op.ToLowerInvariant())).ToArray();
        n.Output.AddRange(outs);
        n.Attribute.AddRange(attrs);
        graph.Node.Add(n);
        return outs;
    }

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    public static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }

    /// <summary>A float tensor input/output; a null dim is symbolic (<paramref name="symbol"/>).</summary>
    public void Input(string name, long?[] dims, string symbol = "batch") => graph.Input.Add(ValueInfo(name, dims, symbol));
    public void Output(string name, long?[] dims, string symbol = "batch") => graph.Output.Add(ValueInfo(name, dims, symbol));

    private static ValueInfoProto ValueInfo(string name, long?[] dims, string symbol)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = symbol });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    public ModelProto ToModel(bool msDomain)
    {
        var m = new ModelProto { IrVersion = 8, ProducerName = "BeitV2.OnnxProbe", ProducerVersion = "0", Graph = graph };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        if (msDomain) m.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        return m;
    }

    public IEnumerable<NodeProto> Nodes => graph.Node;
}
