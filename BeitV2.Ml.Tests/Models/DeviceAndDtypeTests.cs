using BeitV2.Ml;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Layers;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// Device resolution, dtype conversion (<c>Module.to(float64)</c>), the CPU no-op move, and native
/// memory: a forward must leave no tensor alive but its results.
/// </summary>
public class DeviceAndDtypeTests
{
    private const int Batch = 2;

    // ---------------------------------------------------------------- TorchRuntime.ResolveDevice

    [Theory]
    [InlineData("cpu")]
    [InlineData("CPU")]
    [InlineData("  cpu ")]
    public void ResolveDevice_Cpu(string spec)
    {
        var device = TorchRuntime.ResolveDevice(spec);
        Assert.Equal(DeviceType.CPU, device.type);
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("AUTO")]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public void ResolveDevice_Auto_IsCudaOnlyWhenAvailable(string? spec)
    {
        var device = TorchRuntime.ResolveDevice(spec);
        Assert.Equal(cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, device.type);
    }

    [Theory]
    [InlineData("CUDA")]
    [InlineData("cuda")]
    [InlineData("cuda:1")]
    public void ResolveDevice_Cuda_WithoutCuda_ThrowsAHelpfulError(string spec)
    {
        if (cuda.is_available()) return; // the CPU build of the test suite never has CUDA
        var e = Assert.Throws<InvalidOperationException>(() => TorchRuntime.ResolveDevice(spec));
        Assert.Contains($"'{spec}'", e.Message);
        Assert.Contains("CUDA is not available", e.Message);
        Assert.Contains("BeitV2Cuda", e.Message); // says how to get a CUDA build
    }

    [Theory]
    [InlineData("tpu")]
    [InlineData("mps")]
    [InlineData("gpu")]
    public void ResolveDevice_Unknown_ThrowsArgumentException(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => TorchRuntime.ResolveDevice(spec));
        Assert.Equal("spec", e.ParamName);
        Assert.Contains($"'{spec}'", e.Message);
        Assert.Contains("auto, cpu, cuda or cuda:N", e.Message);
    }

    // ---------------------------------------------------------------- float64

    /// <summary>A model, and its eval outputs for inputs of a given dtype (inputs are drawn once, in float32).</summary>
    public sealed record Case(string Name, Func<nn.Module> Build, Func<nn.Module, ScalarType, Tensor[]> Run)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    private static readonly Dictionary<string, Case> Cases = new Case[]
    {
        new("vit_micro", () => new BeitVisionTransformer(VitConfig.Micro() with { UseAbsPosEmb = true }), (m, dt) =>
        {
            var vit = (BeitVisionTransformer)m;
            using var x = Images(vit.Config.ImgSize, dt);
            using var f = vit.ForwardFeatures(x);
            return new[] { vit.ForwardHead(f.Features), f.Features.clone(), f.Tokens.clone() };
        }),
        new("vit_shared_bias_cls_pool", () => new BeitVisionTransformer(VitConfig.Micro() with
        {
            UseRelPosBias = false, UseSharedRelPosBias = true, UseMeanPooling = false, InitValues = 0, QkvBias = false,
        }), (m, dt) =>
        {
            var vit = (BeitVisionTransformer)m;
            using var x = Images(vit.Config.ImgSize, dt);
            using var f = vit.ForwardFeatures(x);
            return new[] { vit.ForwardHead(f.Features), f.Tokens.clone() };
        }),
        new("mim_micro", () => new BeitMim(MimConfig.Micro()), (m, dt) =>
        {
            var mim = (BeitMim)m;
            using var x = Images(mim.Config.ImgSize, dt);
            using var mask = MimMask(mim.NumPatches);
            return mim.ForwardAllTokens(x, mask);
        }),
        new("mim_own_head_per_layer_bias", () => new BeitMim(MimConfig.Micro() with
        {
            SharedLmHead = false, UseRelPosBias = true, UseSharedRelPosBias = false, UseAbsPosEmb = true,
        }), (m, dt) =>
        {
            var mim = (BeitMim)m;
            using var x = Images(mim.Config.ImgSize, dt);
            using var mask = MimMask(mim.NumPatches);
            return mim.ForwardAllTokens(x, mask);
        }),
        new("vqkd_micro", () => new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), (m, dt) =>
        {
            var vq = (VqkdTokenizer)m;
            using var x = Images(32, dt);
            using var targets32 = Seeded(g => randn(new long[] { Batch, vq.Config.GridSize * vq.Config.GridSize, vq.Config.DecoderOutDim }, generator: g));
            using var targets = targets32.to_type(dt);
            using var o = vq.Forward(x, targets);
            return new[] { vq.GetCodebookIndices(x), o.Encoding.EncodeTaskOut.clone(), o.Reconstruction.clone(), o.Loss.clone() };
        }),
        new("clip_teacher", () => new ClipTeacher(new ClipVisionConfig { InputResolution = 32, PatchSize = 8, Width = 32, Layers = 2, Heads = 2, OutputDim = 16 }), (m, dt) =>
        {
            var clip = (ClipTeacher)m;
            using var x = Images(32, dt);
            using var pre = VqkdPreProcess.Default(x);
            using var scaled = clip.Scale(pre);
            return new[] { clip.GetRegressTarget(pre), clip.forward(scaled) };
        }),
        new("dino_teacher", () => new DinoVisionTransformer(GradientTests.SmallDino with { NumClasses = 5 }), (m, dt) =>
        {
            var dino = (DinoVisionTransformer)m;
            using var x = Images(32, dt);
            using var pre = VqkdPreProcess.Default(x);
            return new[] { dino.GetRegressTarget(pre), dino.forward(x) };
        }),
    }.ToDictionary(c => c.Name);

    /// <summary>
    /// After <c>model.to(float64)</c> every parameter and floating buffer is float64, trainability is
    /// unchanged (the VQ-KD codebook stays frozen), and eval outputs on float64 input match float32
    /// within 1e-4 (integer outputs exactly).
    /// </summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ToFloat64_RunsAndMatchesFloat32(string caseName)
    {
        var c = Cases[caseName];
        manual_seed(21);
        using var model = c.Build();
        model.eval();
        var trainable = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.requires_grad);

        var out32 = Run(c, model, float32);
        try
        {
            model.to(float64);
            foreach (var (name, p) in model.named_parameters())
            {
                Assert.True(p.dtype == float64, $"parameter {name} is {p.dtype} after to(float64)");
                Assert.True(p.is_leaf, $"parameter {name} is not a leaf after to(float64)");
                Assert.True(p.requires_grad == trainable[name], $"parameter {name}: requires_grad changed by to(float64)");
            }
            foreach (var (name, b) in model.named_buffers())
                if (b.is_floating_point()) Assert.True(b.dtype == float64, $"buffer {name} is {b.dtype} after to(float64)");

            var out64 = Run(c, model, float64);
            try
            {
                Assert.Equal(out32.Length, out64.Length);
                for (var i = 0; i < out32.Length; i++)
                {
                    if (!out32[i].is_floating_point())
                    {
                        Assert.True(out64[i].dtype == out32[i].dtype, $"output {i}: {out64[i].dtype}, expected {out32[i].dtype}");
                        Assert.True(OneStep.Identical(out32[i], out64[i]), $"output {i}: integer outputs differ between float32 and float64");
                        continue;
                    }
                    Assert.True(out64[i].dtype == float64, $"output {i} is {out64[i].dtype}, expected Float64");
                    Assert.True(out32[i].shape.SequenceEqual(out64[i].shape), $"output {i}: shapes differ");
                    using var diff = (out64[i] - out32[i].to_type(float64)).abs().max();
                    var d = diff.item<double>();
                    Assert.True(d <= 1e-4, $"output {i}: max |float64 − float32| = {d:g3} > 1e-4");
                }
            }
            finally
            {
                foreach (var t in out64) t.Dispose();
            }
        }
        finally
        {
            foreach (var t in out32) t.Dispose();
        }
    }

    /// <summary>
    /// The relative position index is a non-persistent int64 buffer and must stay int64 (index_select
    /// rejects float indices). TorchSharp 0.107's <c>named_buffers</c> never yields non-persistent
    /// buffers, so <c>Module.to(dtype)</c> and <c>Module.to(device)</c> skip it (Lookup keeps its own
    /// copy on the table's device). Should a TorchSharp upgrade start converting it, this test names the cause.
    /// </summary>
    [Fact]
    public void ToFloat64_KeepsTheRelativePositionIndexInt64()
    {
        manual_seed(22);
        using var model = new BeitMim(MimConfig.Micro() with { UseRelPosBias = true });
        model.to(float64);
        var indices = new[] { "rel_pos_bias.relative_position_index", "blocks.0.attn.relative_position_index", "cls_pt_layers.0.attn.relative_position_index" };
        foreach (var name in indices)
        {
            var index = model.get_buffer(name);
            Assert.NotNull(index);
            Assert.True(index!.dtype == int64, $"{name} became {index.dtype}: RelativePositionBias.Lookup needs an int64 index");
        }
        Assert.DoesNotContain(model.state_dict().Keys, k => k.EndsWith(RelativePositionBias.IndexName));
    }

    // ---------------------------------------------------------------- .to(CPU)

    /// <summary>On a CPU model, <c>to(CPU)</c> changes nothing: same values, dtypes, trainability, identical outputs.</summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void ToCpu_IsANoOp(string caseName)
    {
        var c = Cases[caseName];
        manual_seed(23);
        using var model = c.Build();
        model.eval();
        var before = model.named_parameters().ToDictionary(p => p.name, p => (Value: p.parameter.detach().clone(), p.parameter.requires_grad));
        var out1 = Run(c, model, float32);
        // After the first run: VQ-KD's eval forward updates its usage statistic (as the reference does).
        var buffersBefore = model.named_buffers().ToDictionary(b => b.name, b => b.buffer.clone());
        try
        {
            model.to(CPU);
            model.to(TorchRuntime.ResolveDevice("cpu"));
            foreach (var (name, p) in model.named_parameters())
            {
                Assert.True(p.device_type == DeviceType.CPU && p.dtype == float32, $"{name}: {p.device} {p.dtype}");
                Assert.True(p.requires_grad == before[name].requires_grad, $"{name}: requires_grad changed by to(CPU)");
                Assert.True(OneStep.Identical(before[name].Value, p), $"{name}: value changed by to(CPU)");
            }
            foreach (var (name, b) in model.named_buffers())
                Assert.True(OneStep.Identical(buffersBefore[name], b), $"buffer {name} changed by to(CPU)");

            var out2 = Run(c, model, float32);
            try
            {
                for (var i = 0; i < out1.Length; i++)
                    Assert.True(OneStep.Identical(out1[i], out2[i]), $"output {i} differs after to(CPU)");
            }
            finally
            {
                foreach (var t in out2) t.Dispose();
            }
        }
        finally
        {
            foreach (var t in out1) t.Dispose();
            foreach (var (v, _) in before.Values) v.Dispose();
            foreach (var b in buffersBefore.Values) b.Dispose();
        }
    }

    // ---------------------------------------------------------------- native memory

    /// <summary>
    /// Each model's inference entry point, called with no dispose scope at all, leaves exactly its
    /// results alive: every intermediate is disposed by the library itself. Counted with TorchSharp's
    /// per-thread <see cref="DisposeScopeManager.Statistics"/> (exact: created minus disposed).
    /// </summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void InferenceWithoutAScope_LeavesOnlyTheResults(string caseName)
    {
        var c = Cases[caseName];
        manual_seed(24);
        using var model = c.Build();
        model.eval();
        using (Run(c, model, float32).AsDisposable()) { } // warm-up: lazily created state is not a leak

        var stats = DisposeScopeManager.Statistics;
        using var _ = no_grad();
        using var x = Images(32, float32);
        foreach (var (entry, call) in Entries(model))
        {
            stats.Reset();
            var results = call(x);
            Assert.True(results.Length == stats.ThreadTotalLiveCount,
                $"{caseName}.{entry}: {stats.ThreadTotalLiveCount} tensors alive for {results.Length} results; {stats}");
            foreach (var r in results) r.Dispose();
            Assert.True(stats.ThreadTotalLiveCount == 0, $"{caseName}.{entry}: {stats.ThreadTotalLiveCount} tensors left alive; {stats}");
        }
    }

    /// <summary>Fifty scoped inference forwards leave nothing alive; a result moved out of its scope is the only survivor.</summary>
    [Fact]
    public void ScopedInferenceForwards_LeaveNothingAlive()
    {
        manual_seed(25);
        using var model = new BeitVisionTransformer(VitConfig.Micro());
        model.eval();
        using var x = Images(32, float32);
        using var _ = no_grad();
        var stats = DisposeScopeManager.Statistics;
        stats.Reset();
        long? perIteration = null;
        for (var i = 0; i < 50; i++)
        {
            var created = stats.CreatedInScopeCount;
            using (var scope = NewDisposeScope())
            {
                using var y = model.forward(x);
                Assert.Equal(1, scope.DisposablesCount); // only the result: the library disposed its intermediates
            }
            var n = stats.CreatedInScopeCount - created;
            perIteration ??= n;
            Assert.Equal(perIteration, n);
        }
        Assert.True(stats.ThreadTotalLiveCount == 0, $"{stats.ThreadTotalLiveCount} tensors left alive after 50 scoped forwards; {stats}");

        Tensor kept;
        using (NewDisposeScope())
            kept = model.forward(x).MoveToOuterDisposeScope();
        Assert.Equal(1, stats.ThreadTotalLiveCount);
        Assert.False(kept.IsInvalid);
        kept.Dispose();
        Assert.Equal(0, stats.ThreadTotalLiveCount);
    }

    /// <summary>
    /// Training forwards that return records of tensors (VQ-KD output, MIM loss, ViT features with
    /// hidden states), followed by backward: disposing the record frees everything. (Gradients are
    /// native tensors owned by the parameters, not .NET tensors, so they are not counted.)
    /// </summary>
    [Fact]
    public void TrainingForwardsWithoutAScope_FreeEverythingWhenTheOutputIsDisposed()
    {
        manual_seed(26);
        var stats = DisposeScopeManager.Statistics;
        using var x = Images(32, float32);

        using (var vq = new VqkdTokenizer(VqkdConfig.Micro()))
        using (var targets = randn(Batch, 16, vq.Config.DecoderOutDim))
        {
            vq.train();
            for (var i = 0; i < 2; i++) // the first forward runs k-means, the second does not
            {
                stats.Reset();
                using (var o = vq.Forward(x, targets, keepHidden: true)) o.Loss.backward();
                Assert.True(stats.ThreadTotalLiveCount == 0, $"VQ-KD forward {i}: {stats.ThreadTotalLiveCount} tensors left alive; {stats}");
            }
        }

        using (var mim = new BeitMim(MimConfig.Micro()))
        using (var mask = MimMask(mim.NumPatches))
        using (var ids = randint(0, mim.Config.VocabSize, new long[] { Batch, mim.NumPatches }))
        {
            mim.train();
            stats.Reset();
            using (var loss = mim.Loss(x, mask, ids)) loss.Total.backward();
            Assert.True(stats.ThreadTotalLiveCount == 0, $"MIM loss: {stats.ThreadTotalLiveCount} tensors left alive; {stats}");
        }

        using (var vit = new BeitVisionTransformer(VitConfig.Micro()))
        {
            vit.train();
            stats.Reset();
            using (var f = vit.ForwardFeatures(x, keepHidden: true))
            using (var logits = vit.ForwardHead(f.Features))
            using (var sum = logits.sum())
                sum.backward();
            Assert.True(stats.ThreadTotalLiveCount == 0, $"ViT features: {stats.ThreadTotalLiveCount} tensors left alive; {stats}");
        }
    }

    // ---------------------------------------------------------------- helpers

    private static Tensor[] Run(Case c, nn.Module model, ScalarType dtype)
    {
        using var _ = no_grad();
        return c.Run(model, dtype);
    }

    /// <summary>The public inference calls of each kind of model.</summary>
    private static (string Name, Func<Tensor, Tensor[]> Call)[] Entries(nn.Module model) => model switch
    {
        BeitVisionTransformer vit => new (string, Func<Tensor, Tensor[]>)[]
        {
            ("forward", x => new[] { vit.forward(x) }),
            ("ForwardPatchTokens", x => new[] { vit.ForwardPatchTokens(x) }),
            ("ForwardAllTokens", x => new[] { vit.ForwardAllTokens(x) }),
        },
        BeitMim mim => new (string, Func<Tensor, Tensor[]>)[]
        {
            ("forward", x => mim.forward(x, null)),
            ("ForwardAllTokens", x => mim.ForwardAllTokens(x, null)),
            ("ForwardPatchTokens", x => mim.ForwardPatchTokens(x, null)),
        },
        VqkdTokenizer vq => new (string, Func<Tensor, Tensor[]>)[]
        {
            ("GetCodebookIndices", x => new[] { vq.GetCodebookIndices(x) }),
            ("UnusedCodes", _ => { Assert.InRange(vq.Quantizer.UnusedCodes(), 0, vq.VocabSize); return Array.Empty<Tensor>(); }),
        },
        ClipTeacher clip => new (string, Func<Tensor, Tensor[]>)[]
        {
            ("GetRegressTarget", x => new[] { clip.GetRegressTarget(x) }),
            ("forward", x => new[] { clip.forward(x) }),
        },
        DinoVisionTransformer dino => new (string, Func<Tensor, Tensor[]>)[]
        {
            ("GetRegressTarget", x => new[] { dino.GetRegressTarget(x) }),
            ("forward", x => new[] { dino.forward(x) }),
        },
        _ => throw new NotSupportedException(model.GetType().Name),
    };

    /// <summary>The same random images for every dtype: drawn in float32 from a fixed seed, then converted.</summary>
    private static Tensor Images(int size, ScalarType dtype)
    {
        using var x = Seeded(g => rand(new long[] { Batch, 3, size, size }, generator: g));
        return x.to_type(dtype);
    }

    private static Tensor MimMask(int numPatches)
    {
        var gen = new BeitV2.Ml.Masking.BlockMaskingGenerator((int)Math.Sqrt(numPatches), numMaskingPatches: 6, minNumPatches: 2, seed: 5);
        var flat = Enumerable.Range(0, Batch).SelectMany(_ => gen.Generate()).ToArray();
        return tensor(flat, new long[] { Batch, numPatches });
    }

    /// <summary>Draws from a private generator so the global torch RNG (model init) is untouched.</summary>
    private static Tensor Seeded(Func<Generator, Tensor> draw)
    {
        using var generator = new Generator(1234);
        return draw(generator);
    }
}

internal static class TensorArrayExtensions
{
    public static IDisposable AsDisposable(this Tensor[] tensors) => new Disposer(tensors);

    private sealed class Disposer(Tensor[] tensors) : IDisposable
    {
        public void Dispose()
        {
            foreach (var t in tensors) t.Dispose();
        }
    }
}
