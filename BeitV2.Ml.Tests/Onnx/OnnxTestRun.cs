using BeitV2.Ml.Onnx;
using BeitV2.Ml.Tests.Parity;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace BeitV2.Ml.Tests.Onnx;

/// <summary>
/// Runs an exported graph once in ONNX Runtime (default optimisations) on TorchSharp tensors; every output back as a tensor.
/// The session runs on <see cref="ParityDevice"/> (<c>BEITV2_TEST_DEVICE</c>: the CPU, or the CUDA provider in
/// <c>scripts/gpu-check</c>, TF32 off) with serving's session settings.
/// </summary>
public static class OnnxTestRun
{
    public static Dictionary<string, Tensor> Run(global::Onnx.ModelProto model, IReadOnlyDictionary<string, Tensor> inputs,
        GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        using var session = new OnnxTestSession(model, level);
        return session.Run(inputs);
    }
}

/// <summary>One ONNX Runtime session (on the test device, 2 threads) over an exported graph, run as often as needed (as serving runs one session on every batch size).</summary>
public sealed class OnnxTestSession : IDisposable
{
    private readonly SessionOptions options;
    private readonly InferenceSession session;

    public OnnxTestSession(global::Onnx.ModelProto model, GraphOptimizationLevel level = GraphOptimizationLevel.ORT_ENABLE_ALL)
    {
        options = new OnnxSessionSettings { IntraOpThreads = 2 }.Create(ParityDevice.Name);
        options.GraphOptimizationLevel = level;
        session = new InferenceSession(model.ToByteArray(), options);
    }

    public Dictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs)
    {
        var values = new List<NamedOnnxValue>();
        foreach (var (name, t) in inputs)
        {
            using var c = t.detach().cpu().contiguous();
            var dims = c.shape.Select(d => (int)d).ToArray();
            values.Add(c.dtype switch
            {
                ScalarType.Float32 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(c.data<float>().ToArray(), dims)),
                ScalarType.Bool => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<bool>(c.data<bool>().ToArray(), dims)),
                ScalarType.Int64 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(c.data<long>().ToArray(), dims)),
                _ => throw new ArgumentException($"{name}: {c.dtype} inputs are not supported here."),
            });
        }
        using var results = session.Run(values);
        var outputs = new Dictionary<string, Tensor>();
        foreach (var r in results)
        {
            switch (r.Value)
            {
                case DenseTensor<float> f: outputs[r.Name] = tensor(f.Buffer.ToArray(), f.Dimensions.ToArray().Select(d => (long)d).ToArray()); break;
                case DenseTensor<long> l: outputs[r.Name] = tensor(l.Buffer.ToArray(), l.Dimensions.ToArray().Select(d => (long)d).ToArray()); break;
                case DenseTensor<int> i: outputs[r.Name] = tensor(i.Buffer.ToArray(), i.Dimensions.ToArray().Select(d => (long)d).ToArray()); break;
                default: throw new InvalidOperationException($"{r.Name}: unexpected output type {r.Value?.GetType().Name}.");
            }
        }
        return outputs;
    }

    public void Dispose()
    {
        session.Dispose();
        options.Dispose();
    }
}
