using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using Onnx;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Serving;

/// <summary>Counts the graphs serving exports and can make the next ones fail: the seam of <see cref="ServingOptions.Exporter"/>.</summary>
public sealed class CountingExporter : OnnxExporter
{
    private int count;

    /// <summary>Graphs exported so far (including failed attempts).</summary>
    public int Count => count;

    /// <summary>When set, every export throws this.</summary>
    public Exception? Fail { get; set; }

    public override ModelProto Export(ModelEntry entry, nn.Module module, OnnxExportOptions options)
    {
        Interlocked.Increment(ref count);
        if (Fail is { } e) throw e;
        return base.Export(entry, module, options);
    }
}

/// <summary>Packages, batches and comparisons for the serving tests.</summary>
public static class ServingSupport
{
    /// <summary>The servable kinds at their test size: every kind the API serves, each config variant that changes the graph.</summary>
    public static IEnumerable<(string Name, string Kind, Func<object> Config)> Servable() =>
    [
        ("vit classifier, mean pooling", ModelKind.VitCls, () => VitConfig.Micro(numClasses: 5)),
        ("vit classifier, [CLS] pooling", ModelKind.VitCls, () => VitConfig.Micro(numClasses: 4) with { UseMeanPooling = false }),
        ("vit backbone", ModelKind.VitCls, () => VitConfig.Micro(numClasses: 0)),
        ("mim", ModelKind.Mim, () => MimConfig.Micro()),
        ("vq-kd tokenizer", ModelKind.Vqkd, () => VqkdConfig.Micro() with { QuantizeKmeansInit = false }),
        ("segmenter", ModelKind.Segmenter, () => ModelCatalog.Default[ModelKind.Segmenter].Preset("micro")),
    ];

    /// <summary>A freshly initialised model of <paramref name="kind"/> saved as a package in <paramref name="directory"/> (seeded: the same weights every time).</summary>
    public static void SavePackage(string kind, object config, string directory, long seed = 7)
    {
        manual_seed(seed);
        using var model = ModelCatalog.Default[kind].Create(config);
        ModelPackage.Save(model, directory);
    }

    /// <summary>Serving on <see cref="Parity.ParityDevice"/> (the CPU, or a GPU under <c>scripts/gpu-check</c>), one thread.</summary>
    public static ServingOptions Options(ServingEngine engine, OnnxExporter? exporter = null) => new()
    {
        Engine = engine,
        Device = Parity.ParityDevice.Name,
        Threads = 1,
        Exporter = exporter ?? OnnxExporter.Default,
    };

    /// <summary><paramref name="count"/> images of normalised-looking pixels (N(0, 1)), the same for a seed.</summary>
    public static float[][] Images(int size, int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var pixels = new float[3 * size * size];
            for (var i = 0; i < pixels.Length; i++)
                pixels[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
            return pixels;
        }).ToArray();
    }

    /// <summary>The parity rule (TensorAssert): |got − want| ≤ 1e-5·max(1, max|want|) + 1e-5·|want| for every element.</summary>
    public static void Close(float[] want, float[] got, string what)
    {
        Assert.Equal(want.Length, got.Length);
        var atol = 1e-5 * Math.Max(1.0, want.Length == 0 ? 0 : want.Max(MathF.Abs));
        for (var i = 0; i < want.Length; i++)
        {
            var diff = Math.Abs((double)got[i] - want[i]);
            Assert.False(float.IsNaN(got[i]), $"{what}[{i}] is NaN");
            Assert.True(diff <= atol + 1e-5 * Math.Abs(want[i]), $"{what}[{i}]: {got[i]} vs {want[i]} (|diff| {diff:g3}, allowed {atol + 1e-5 * Math.Abs(want[i]):g3})");
        }
    }

    /// <summary>Runs every operation of <paramref name="model"/> on <paramref name="batch"/>: one answer per operation, per image.</summary>
    public static Dictionary<Operation, object[]> RunAll(ServedModel model, ImageBatch batch) =>
        model.Operations.ToDictionary(o => o.Operation, o => o.Operation switch
        {
            Operation.Features => (object[])model.Features(batch),
            Operation.Classify => model.Classify(batch),
            Operation.Tokens => model.Tokens(batch),
            Operation.Segment => model.Segment(batch),
            _ => throw new ArgumentOutOfRangeException(nameof(o)),
        });

    /// <summary>One image's answers of two engines: floats at the strict tolerance, token ids and class maps exactly.</summary>
    public static void Same(object want, object got, string what)
    {
        switch (want, got)
        {
            case (FeaturesResult w, FeaturesResult g):
                Close(w.Cls, g.Cls, what + " cls");
                Close(w.Mean, g.Mean, what + " mean");
                break;
            case (ClassProbabilities w, ClassProbabilities g):
                Close(w.Probabilities, g.Probabilities, what + " probabilities");
                // The pooled feature the out-of-domain score reads rides along on both engines.
                Assert.NotNull(w.Feature);
                Assert.NotNull(g.Feature);
                Close(w.Feature, g.Feature, what + " feature");
                break;
            case (TokensResult w, TokensResult g):
                Assert.True(w.Ids.SequenceEqual(g.Ids), $"{what}: token ids differ at {Enumerable.Range(0, w.Ids.Length).Count(i => w.Ids[i] != g.Ids[i])} of {w.Ids.Length} patches");
                break;
            case (ClassMap w, ClassMap g):
                Assert.Equal((w.Width, w.Height), (g.Width, g.Height));
                Assert.True(w.Classes.SequenceEqual(g.Classes), $"{what}: classes differ at {Enumerable.Range(0, w.Classes.Length).Count(i => w.Classes[i] != g.Classes[i])} of {w.Classes.Length} pixels");
                Assert.NotNull(w.Feature);
                Assert.NotNull(g.Feature);
                Close(w.Feature, g.Feature, what + " feature");
                break;
            default:
                Assert.Fail($"{what}: {want.GetType().Name} vs {got.GetType().Name}");
                break;
        }
    }
}
