using BeitV2.Ml.Masking;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// One optimiser step of each model on CPU changes every trainable parameter: a real training loss
/// is built in train mode, every parameter with requires_grad must receive a gradient that is not
/// identically zero, and one AdamW step must change it. A parameter that is registered but never
/// reaches the loss (a wiring bug: a branch that is built but not used, a parameter read under the
/// wrong name, a detach in the wrong place) fails with its name.
/// </summary>
/// <remarks>
/// Weight decay is 0 on purpose: with decay every parameter would move even with a zero gradient,
/// and the "changed" assertion could not fail. Adam moves every element whose gradient is non-zero
/// by about lr on its first step, so "changed" means "the gradient reached this tensor".
/// </remarks>
public class GradientTests
{
    private const int Batch = 2;

    // ---------------------------------------------------------------- BEiT ViT

    [Fact]
    public void Vit_Micro_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(1);
        using var model = new BeitVisionTransformer(VitConfig.Micro());
        using var images = rand(Batch, 3, 32, 32);
        using var labels = randint(0, model.Config.NumClasses, new long[] { Batch });
        OneStep.AssertEveryParameterMoves(model, () =>
        {
            using var logits = model.forward(images);
            return nn.functional.cross_entropy(logits, labels);
        });
    }

    /// <summary>
    /// The other constructor branches: the shared relative position bias (rel_pos_bias.*), the
    /// absolute position embedding, [CLS] pooling through <c>norm</c> instead of fc_norm, no layer
    /// scale (no gamma_*) and no q/v bias.
    /// </summary>
    [Fact]
    public void Vit_SharedRelPosBias_AbsPos_ClsPooling_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(2);
        var config = VitConfig.Micro() with
        {
            UseRelPosBias = false, UseSharedRelPosBias = true, UseAbsPosEmb = true, UseMeanPooling = false,
            InitValues = 0, QkvBias = false,
        };
        using var model = new BeitVisionTransformer(config);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("rel_pos_bias.relative_position_bias_table", names);
        Assert.Contains("pos_embed", names);
        Assert.Contains("norm.weight", names);
        Assert.DoesNotContain(names, n => n.StartsWith("fc_norm.") || n.Contains("gamma_") || n.Contains("q_bias") || n.Contains("attn.relative_position_bias_table"));

        using var images = rand(Batch, 3, 32, 32);
        using var labels = randint(0, config.NumClasses, new long[] { Batch });
        OneStep.AssertEveryParameterMoves(model, () =>
        {
            using var logits = model.forward(images);
            return nn.functional.cross_entropy(logits, labels);
        });
    }

    // ---------------------------------------------------------------- BEiT v2 MIM

    [Fact]
    public void Mim_Micro_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(3);
        var config = MimConfig.Micro();
        using var model = new BeitMim(config);
        AssertMimStep(model, config, maskSeed: 3);
    }

    /// <summary>The head with its own cls_pt_norm / cls_pt_lm_head, per-layer relative bias, absolute position embedding.</summary>
    [Fact]
    public void Mim_OwnHead_PerLayerRelPosBias_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(4);
        var config = MimConfig.Micro() with
        {
            SharedLmHead = false, UseRelPosBias = true, UseSharedRelPosBias = false, UseAbsPosEmb = true,
        };
        using var model = new BeitMim(config);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("cls_pt_lm_head.weight", names);
        Assert.Contains("cls_pt_norm.weight", names);
        Assert.Contains("cls_pt_layers.0.attn.relative_position_bias_table", names);
        Assert.Contains("pos_embed", names);
        Assert.DoesNotContain(names, n => n.StartsWith("rel_pos_bias."));
        AssertMimStep(model, config, maskSeed: 4);
    }

    private static void AssertMimStep(BeitMim model, MimConfig config, int maskSeed)
    {
        var gen = new BlockMaskingGenerator(config.GridSize, numMaskingPatches: 6, minNumPatches: 2, seed: maskSeed);
        var flat = Enumerable.Range(0, Batch).SelectMany(_ => gen.Generate()).ToArray();
        using var mask = tensor(flat, new long[] { Batch, config.NumPatches });
        using var images = rand(Batch, 3, config.ImgSize, config.ImgSize);
        using var tokenIds = randint(0, config.VocabSize, new long[] { Batch, config.NumPatches });
        OneStep.AssertEveryParameterMoves(model, () =>
        {
            using var loss = model.Loss(images, mask, tokenIds);
            return loss.Total.alias();
        });
    }

    // ---------------------------------------------------------------- VQ-KD

    [Fact]
    public void Vqkd_Micro_OneStepChangesEveryTrainableParameter_AndTheCodebookFollowsEmaAndKMeans()
    {
        manual_seed(5);
        var config = VqkdConfig.Micro() with { QuantizeKmeansInit = true };
        using var model = new VqkdTokenizer(config);
        var codebook = model.Quantizer.Embedding;
        Assert.False(codebook.Weight.requires_grad, "quantize.embedding.weight must not be trainable (it follows an EMA)");
        Assert.False(codebook.Initialised);
        Assert.DoesNotContain(model.named_parameters(), p => p.parameter.requires_grad && p.name.StartsWith("quantize."));

        using var weightBefore = codebook.Weight.detach().clone();
        using var images = rand(Batch, 3, 32, 32);
        using var targets = randn(Batch, config.GridSize * config.GridSize, config.DecoderOutDim);
        OneStep.AssertEveryParameterMoves(model, () =>
        {
            using var output = model.Forward(images, targets);
            return output.Loss.alias();
        });

        Assert.True(codebook.Initialised, "the first training forward must run k-means and set initted to 1");
        using (var initted = codebook.get_buffer("initted")!.to_type(float64))
            Assert.Equal(1.0, initted.item<double>());
        Assert.False(codebook.Weight.requires_grad);
        Assert.Null(codebook.Weight.grad);
        Assert.False(OneStep.Identical(weightBefore, codebook.Weight), "the codebook did not change through k-means init and the EMA update");
        using var norms = codebook.Weight.detach().norm(1);
        using var ones = ones_like(norms);
        Assert.True(norms.allclose(ones, rtol: 0, atol: 1e-5), "codebook rows must stay unit-norm");
    }

    /// <summary>The commitment loss alone reaches the encoder and its task layer, and nothing after the quantizer.</summary>
    [Fact]
    public void Vqkd_CommitmentLoss_HasAGradientPathToTheEncoder()
    {
        manual_seed(6);
        var config = VqkdConfig.Micro() with { QuantizeKmeansInit = true };
        using var model = new VqkdTokenizer(config);
        model.train();
        using var images = rand(Batch, 3, 32, 32);
        using var targets = randn(Batch, config.GridSize * config.GridSize, config.DecoderOutDim);
        using (var output = model.Forward(images, targets))
        {
            Assert.True(output.Encoding.CommitLoss.requires_grad);
            Assert.True(output.Encoding.CommitLoss.item<float>() > 0);
            output.Encoding.CommitLoss.backward();
        }

        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        var upstream = trainable.Where(p => p.name.StartsWith("encoder.") || p.name.StartsWith("encode_task_layer.")).ToList();
        var downstream = trainable.Where(p => p.name.StartsWith("decoder.") || p.name.StartsWith("decode_task_layer.")).ToList();
        Assert.NotEmpty(upstream);
        Assert.NotEmpty(downstream);
        var missing = upstream.Where(p => !OneStep.HasNonZeroGrad(p.parameter)).Select(p => p.name).ToList();
        Assert.True(missing.Count == 0, "commitment loss gives no gradient to: " + string.Join(", ", missing));
        var leaked = downstream.Where(p => p.parameter.grad is not null).Select(p => p.name).ToList();
        Assert.True(leaked.Count == 0, "commitment loss must not reach the decoder, but reached: " + string.Join(", ", leaked));
    }

    // ---------------------------------------------------------------- teachers

    [Fact]
    public void ClipTeacher_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(7);
        using var teacher = new ClipTeacher(new ClipVisionConfig { InputResolution = 32, PatchSize = 8, Width = 32, Layers = 2, Heads = 2, OutputDim = 16 });
        using var imagesPre = rand(Batch, 3, 32, 32) * 2 - 1;
        using var goal = randn(Batch, 16, 16);
        // GetRegressTarget runs under no_grad (the teacher is frozen in VQ-KD): call the tower directly.
        OneStep.AssertEveryParameterMoves(teacher, () =>
        {
            using var scaled = teacher.Scale(imagesPre);
            using var target = teacher.Visual.RegressTarget(scaled);
            return RegressionLoss(target, goal);
        });
    }

    [Fact]
    public void DinoTeacher_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(8);
        using var teacher = new DinoVisionTransformer(SmallDino);
        using var imagesPre = rand(Batch, 3, 32, 32) * 2 - 1;
        using var goal = randn(Batch, 16, SmallDino.EmbedDim);
        OneStep.AssertEveryParameterMoves(teacher, () =>
        {
            using var scaled = teacher.Scale(imagesPre);
            var (tokens, _) = teacher.ForwardTokens(scaled);
            using (tokens)
            using (var target = tokens[.., 1..])
                return RegressionLoss(target, goal);
        });
    }

    /// <summary>The [CLS] path with a classification head (the reference forward).</summary>
    [Fact]
    public void DinoWithHead_ClsForward_OneStepChangesEveryTrainableParameter()
    {
        manual_seed(9);
        using var model = new DinoVisionTransformer(SmallDino with { NumClasses = 5 });
        using var images = rand(Batch, 3, 32, 32);
        using var labels = randint(0, 5, new long[] { Batch });
        OneStep.AssertEveryParameterMoves(model, () =>
        {
            using var logits = model.forward(images);
            return nn.functional.cross_entropy(logits, labels);
        });
    }

    internal static readonly DinoConfig SmallDino = new() { ImgSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2 };

    /// <summary>
    /// MSE against a fixed random target. Not the mean of squares of the target itself: the DINO
    /// target is LayerNorm output, whose mean square is ≈ 1 whatever comes before it at init
    /// (γ = 1, β = 0), so that loss would give everything upstream only rounding-noise gradients.
    /// </summary>
    private static Tensor RegressionLoss(Tensor prediction, Tensor goal) => nn.functional.mse_loss(prediction, goal);
}

/// <summary>Runs one AdamW step and checks that it reached every trainable parameter.</summary>
internal static class OneStep
{
    public static void AssertEveryParameterMoves(nn.Module model, Func<Tensor> computeLoss)
    {
        using var scope = NewDisposeScope();
        model.train();
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.NotEmpty(trainable);
        var before = trainable.ToDictionary(p => p.name, p => p.parameter.detach().clone());

        using var optimizer = optim.AdamW(trainable.Select(p => p.parameter), lr: 1e-3, weight_decay: 0);
        optimizer.zero_grad();
        var loss = computeLoss();
        Assert.Equal(0, loss.dim());
        var value = loss.item<float>();
        Assert.True(float.IsFinite(value), $"loss is {value}");
        loss.backward();

        var noGrad = trainable.Where(p => p.parameter.grad is null).Select(p => p.name).ToList();
        var zeroGrad = trainable.Where(p => p.parameter.grad is not null && !HasNonZeroGrad(p.parameter)).Select(p => p.name).ToList();
        optimizer.step();
        var unchanged = trainable.Where(p => Identical(before[p.name], p.parameter)).Select(p => p.name).ToList();

        Assert.True(noGrad.Count == 0, $"{noGrad.Count} of {trainable.Count} trainable parameters got no gradient: {string.Join(", ", noGrad)}");
        Assert.True(zeroGrad.Count == 0, $"{zeroGrad.Count} of {trainable.Count} trainable parameters got an all-zero gradient: {string.Join(", ", zeroGrad)}");
        Assert.True(unchanged.Count == 0, $"{unchanged.Count} of {trainable.Count} trainable parameters did not change: {string.Join(", ", unchanged)}");
    }

    /// <summary>Same shape and bitwise-equal values.</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }

    public static bool HasNonZeroGrad(Parameter p)
    {
        var grad = p.grad;
        if (grad is null) return false;
        using var nonZero = grad.count_nonzero();
        return nonZero.item<long>() > 0;
    }
}
