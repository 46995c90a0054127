using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Precision;
using BeitV2.Ml.Tests.Models;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Precision;

/// <summary>
/// The library's explicit autocast (<see cref="Autocast"/>) on the CPU: every model runs its
/// forward (and backward) in bfloat16 and in float16 (libtorch 2.10 has CPU kernels for both) with
/// float32 outputs, float32 gradients on the float32 weights, and results close to float32 at a
/// low-precision tolerance. Not parity tests: those stay float32 and strict.
/// </summary>
public class AutocastTests
{
    private const int Batch = 2;

    /// <summary>A model and the float outputs of one eval forward.</summary>
    public sealed record Case(string Name, Func<nn.Module> Build, Func<nn.Module, Tensor[]> Run)
    {
        public override string ToString() => Name;
    }

    private static Tensor Images(int size)
    {
        using var g = new Generator(4321);
        return rand(new long[] { Batch, 3, size, size }, generator: g);
    }

    private static readonly Dictionary<string, Case> Cases = new Case[]
    {
        new("vit", () => new BeitVisionTransformer(VitConfig.Micro() with { UseAbsPosEmb = true }), m =>
        {
            var vit = (BeitVisionTransformer)m;
            using var x = Images(32);
            using var f = vit.ForwardFeatures(x);
            return new[] { vit.ForwardHead(f.Features), f.Tokens.clone() };
        }),
        new("mim", () => new BeitMim(MimConfig.Micro()), m =>
        {
            var mim = (BeitMim)m;
            using var x = Images(32);
            return mim.ForwardAllTokens(x, null);
        }),
        new("vqkd", () => new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), m =>
        {
            var vq = (VqkdTokenizer)m;
            using var x = Images(32);
            using var g = new Generator(99);
            using var targets = randn(new long[] { Batch, 16, vq.Config.DecoderOutDim }, generator: g);
            using var o = vq.Forward(x, targets);
            // Only the continuous encoder output: the reconstruction and loss follow the nearest-code choice, and a
            // near tie can flip under bf16 (with a thread count other tests change), which is not an accuracy error.
            // The decoder is a ViT like the "vit" case.
            return new[] { o.Encoding.EncodeTaskOut.clone() };
        }),
        new("clip", () => new ClipTeacher(new ClipVisionConfig { InputResolution = 32, PatchSize = 8, Width = 32, Layers = 2, Heads = 2, OutputDim = 16 }), m =>
        {
            var clip = (ClipTeacher)m;
            using var x = Images(32);
            using var pre = VqkdPreProcess.Default(x);
            return new[] { clip.GetRegressTarget(pre) };
        }),
        new("dino", () => new DinoVisionTransformer(GradientTests.SmallDino with { NumClasses = 5 }), m =>
        {
            var dino = (DinoVisionTransformer)m;
            using var x = Images(32);
            return new[] { dino.forward(x) };
        }),
        new("segmenter", () => new BeitSegmenter(SegmentationConfig.Micro()), m =>
        {
            var seg = (BeitSegmenter)m;
            using var x = Images(64);
            using var o = seg.ForwardTrain(x);
            return new[] { o.Decode.clone(), o.Auxiliary!.clone() };
        }),
    }.ToDictionary(c => c.Name);

    public static TheoryData<string, string> LowPrecisionCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in Cases.Keys)
            foreach (var p in new[] { "bf16", "fp16" })
                data.Add(name, p);
        return data;
    }

    [Theory]
    [MemberData(nameof(LowPrecisionCases))]
    public void EvalForward_IsFloat32AndCloseToFloat32(string caseName, string precision)
    {
        var c = Cases[caseName];
        var p = ComputePrecisions.Parse(precision);
        manual_seed(31);
        using var model = c.Build();
        model.eval();
        Tensor[] reference, low;
        using (no_grad()) reference = c.Run(model);
        using (no_grad())
        using (Autocast.Enable(p))
            low = c.Run(model);
        try
        {
            Assert.False(Autocast.IsEnabled);
            for (var i = 0; i < reference.Length; i++)
            {
                Assert.True(low[i].dtype == ScalarType.Float32, $"{caseName} output {i} is {low[i].dtype} under {precision}, expected Float32");
                AssertClose(reference[i], low[i], $"{caseName} output {i} ({precision})");
            }
            // The region really computed in low precision (a float32 run would be bit-identical).
            Assert.Contains(reference.Zip(low), pair => !pair.First.Equals(pair.Second));
        }
        finally
        {
            foreach (var t in reference.Concat(low)) t.Dispose();
        }
    }

    /// <summary>Outside a region, and inside an fp32 region, results are bit-identical to the plain model.</summary>
    [Theory]
    [InlineData("vit")]
    [InlineData("mim")]
    [InlineData("segmenter")]
    public void Fp32Region_IsBitIdentical(string caseName)
    {
        var c = Cases[caseName];
        manual_seed(32);
        using var model = c.Build();
        model.eval();
        Tensor[] a, b;
        using (no_grad()) a = c.Run(model);
        using (no_grad())
        using (Autocast.Enable(ComputePrecision.Fp32))
            b = c.Run(model);
        try
        {
            for (var i = 0; i < a.Length; i++) Assert.True(a[i].Equals(b[i]), $"output {i} differs in an fp32 region");
        }
        finally
        {
            foreach (var t in a.Concat(b)) t.Dispose();
        }
    }

    /// <summary>Training under bf16 autocast: the loss is float32, every trainable weight gets a finite float32 gradient.</summary>
    [Fact]
    public void Backward_GivesFloat32GradientsOnFloat32Weights()
    {
        manual_seed(33);
        using var vit = new BeitVisionTransformer(VitConfig.Micro() with { DropPathRate = 0.1 });
        vit.train();
        using var x = Images(32);
        using var labels = tensor(new long[] { 1, 3 });
        using (Autocast.Enable(ComputePrecision.Bf16))
        using (var logits = vit.forward(x))
        using (var loss = nn.functional.cross_entropy(logits, labels))
        {
            Assert.True(loss.dtype == ScalarType.Float32);
            loss.backward();
        }
        foreach (var (name, p) in vit.named_parameters())
        {
            Assert.True(p.dtype == ScalarType.Float32, $"{name} is {p.dtype}");
            Assert.True(p.grad is not null, $"{name} got no gradient");
            Assert.True(p.grad!.dtype == ScalarType.Float32, $"{name}.grad is {p.grad.dtype}");
            Assert.True(p.grad.isfinite().all().item<bool>(), $"{name}.grad is not finite");
        }
    }

    [Fact]
    public void Regions_NestAndRestore_PerThread()
    {
        Assert.Null(Autocast.Current);
        using (Autocast.Enable(ComputePrecision.Bf16))
        {
            Assert.Equal(ScalarType.BFloat16, Autocast.Current);
            using (Autocast.Enable(ComputePrecision.Fp32)) Assert.Null(Autocast.Current);
            Assert.Equal(ScalarType.BFloat16, Autocast.Current);
            ScalarType? other = ScalarType.Float32;
            var t = new Thread(() => other = Autocast.Current);
            t.Start();
            t.Join();
            Assert.Null(other); // a region belongs to its thread
        }
        Assert.Null(Autocast.Current);
    }

    [Theory]
    [InlineData("fp32", ComputePrecision.Fp32)]
    [InlineData("none", ComputePrecision.Fp32)]
    [InlineData(null, ComputePrecision.Fp32)]
    [InlineData(" BF16 ", ComputePrecision.Bf16)]
    [InlineData("bfloat16", ComputePrecision.Bf16)]
    [InlineData("fp16", ComputePrecision.Fp16)]
    [InlineData("half", ComputePrecision.Fp16)]
    public void Parse_AcceptsTheDocumentedNames(string? text, ComputePrecision expected) =>
        Assert.Equal(expected, ComputePrecisions.Parse(text));

    [Fact]
    public void Parse_RejectsOthers() =>
        Assert.Contains("fp32", Assert.Throws<ArgumentException>(() => ComputePrecisions.Parse("int8")).Message);

    /// <summary>bf16 keeps 8 significant bits: a few layers give errors of about a percent of the output's scale.</summary>
    internal static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        using var scope = NewDisposeScope();
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shape differs");
        var e = expected.to_type(ScalarType.Float64).flatten();
        var a = actual.to_type(ScalarType.Float64).flatten();
        Assert.True(a.isfinite().all().item<bool>(), $"{what}: not finite");
        var scale = Math.Max(1e-3, e.abs().max().item<double>());
        var maxDiff = (a - e).abs().max().item<double>();
        Assert.True(maxDiff <= 0.05 * scale, $"{what}: max |low − fp32| = {maxDiff:g3} > 5% of max |fp32| = {scale:g3}");
        if (e.numel() > 1)
        {
            var cos = nn.functional.cosine_similarity(e.unsqueeze(0), a.unsqueeze(0)).item<double>();
            Assert.True(cos > 0.999, $"{what}: cosine similarity {cos:F5} to the fp32 output");
        }
    }
}
