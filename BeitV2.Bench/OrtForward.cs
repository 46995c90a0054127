using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace BeitV2.Bench;

/// <summary>
/// An ONNX graph in an <see cref="InferenceSession"/> with the options serving uses (default graph
/// optimisations = <c>ORT_ENABLE_ALL</c>, sequential execution, <c>threads</c> intra-op threads, one inter-op
/// thread), fed one fixed (B,3,S,S) float batch. Each run fetches the given outputs and copies them out
/// once, as the serving path does.
/// </summary>
public sealed class OrtForward : ForwardEngine
{
    private readonly string key;
    private readonly InferenceSession session;
    private readonly OrtValue input;
    private readonly string[] inputNames;
    private readonly string[] outputs;
    private readonly RunOptions runOptions = new();

    public override string Key => key;

    private OrtForward(string key, InferenceSession session, string inputName, int batch, int size, string[] outputs)
    {
        this.key = key;
        this.session = session;
        this.outputs = outputs;
        inputNames = new[] { inputName };
        var data = new float[batch * 3 * size * size];
        var rng = new Random(0);
        for (var i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1);
        input = OrtValue.CreateTensorValueFromMemory(data, new long[] { batch, 3, size, size });
    }

    /// <summary>The session options of the comparison: ORT's defaults (what serving uses) with a fixed thread count.</summary>
    public static SessionOptions Options(int threads) => new()
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
    };

    /// <summary>A session over a serialised graph (bytes or a file); session creation is timed, not part of the runs.</summary>
    public sealed class Session : IDisposable
    {
        public InferenceSession Inner { get; }
        public double CreateMs { get; }
        public string InputName { get; }

        public Session(byte[] model, int threads) : this(() => new InferenceSession(model, Options(threads))) { }
        public Session(string path, int threads) : this(() => new InferenceSession(path, Options(threads))) { }

        private Session(Func<InferenceSession> create)
        {
            var sw = Stopwatch.StartNew();
            Inner = create();
            CreateMs = sw.Elapsed.TotalMilliseconds;
            InputName = Inner.InputMetadata.Keys.Single();
        }

        public void Dispose() => Inner.Dispose();
    }

    /// <summary>An engine over <paramref name="session"/> (not owned: one session serves batch 1 and 8).</summary>
    public static OrtForward On(string key, Session session, int batch, int size, params string[] outputs) =>
        new(key, session.Inner, session.InputName, batch, size, outputs);

    public override double RunOnceMs()
    {
        var start = Stopwatch.GetTimestamp();
        using (var results = session.Run(runOptions, inputNames, new[] { input }, outputs))
            foreach (var r in results)
            {
                // Copied out once, as serving hands results to the requests.
                var info = r.GetTensorTypeAndShape();
                if (info.ElementDataType == TensorElementType.Int64) _ = r.GetTensorDataAsSpan<long>().ToArray();
                else _ = r.GetTensorDataAsSpan<float>().ToArray();
            }
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    public override void Dispose()
    {
        input.Dispose();
        runOptions.Dispose();
        base.Dispose();
    }
}
