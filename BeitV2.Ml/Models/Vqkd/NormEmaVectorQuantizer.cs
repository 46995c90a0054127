using BeitV2.Ml.Models.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Vqkd;

/// <summary>What the quantizer returns for a (B, C, H, W) input.</summary>
/// <param name="Quantized">straight-through z_q, (B, C, H, W).</param>
/// <param name="Loss">commitment loss β·mse(z_q, z) with β = 1.</param>
/// <param name="Indices">code index per position, (B·H·W), in b, h, w order.</param>
public sealed record Quantization(Tensor Quantized, Tensor Loss, Tensor Indices) : IDisposable
{
    public void Dispose()
    {
        Quantized.Dispose();
        Loss.Dispose();
        Indices.Dispose();
    }
}

/// <summary>
/// The normalised EMA vector quantizer (unilm norm_ema_quantizer.py): inputs and codes are
/// l2-normalised; in training the codebook follows an EMA of the normalised means of the vectors
/// assigned to each code (no codebook loss, no dead-code restart) and is initialised by cosine
/// k-means on the first training batch. Usage statistics (<c>cluster_size</c>) are EMA-updated in
/// both modes, as in the reference.
/// </summary>
public sealed class NormEmaVectorQuantizer : ExplicitModule<Tensor, Quantization>
{
    private readonly EmbeddingEma embedding;

    public int NumTokens { get; }
    public int CodebookDim { get; }
    public double Decay { get; }
    public double Beta { get; } = 1.0;

    /// <summary>Whether eval-mode forwards update the usage statistic (the reference does; serving uses <see cref="NearestCodes"/>, which never does).</summary>
    public bool TrackUsageInEval { get; set; } = true;

    public NormEmaVectorQuantizer(int nEmbed, int embeddingDim, double decay, bool kmeansInit) : base(nameof(NormEmaVectorQuantizer))
    {
        NumTokens = nEmbed;
        CodebookDim = embeddingDim;
        Decay = decay;
        embedding = new EmbeddingEma(nEmbed, embeddingDim, kmeansInit);
        register_buffer("cluster_size", zeros(nEmbed));
        register_module("embedding", embedding);
    }

    public EmbeddingEma Embedding => embedding;
    public Tensor ClusterSize => get_buffer("cluster_size")!;

    /// <summary>Zeroes the usage statistic (the reference does this at every epoch start and before evaluation).</summary>
    public void ResetUsage()
    {
        using var _ = no_grad();
        ClusterSize.zero_();
    }

    /// <summary>Codes whose usage statistic is exactly zero ("Unused code" in the reference logs).</summary>
    public int UnusedCodes()
    {
        using var zerosMask = ClusterSize.eq(0);
        using var count = zerosMask.sum();
        return (int)count.item<long>();
    }

    public override Quantization forward(Tensor zIn)
    {
        using var scope = NewDisposeScope();
        var z = nn.functional.normalize(zIn.permute(0, 2, 3, 1), p: 2, dim: -1);
        var zFlat = z.reshape(-1, CodebookDim);
        if (training) embedding.InitEmbed(zFlat);
        else if (!embedding.Initialised)
            throw new InvalidOperationException("The codebook was never initialised (initted = 0): train the tokenizer first or load trained weights.");

        var weight = embedding.Weight;
        var indices = Nearest(zFlat);
        var zq = weight.index_select(0, indices).view(z.shape);

        using (no_grad())
        {
            var encodings = nn.functional.one_hot(indices, NumTokens).to_type(z.dtype);
            var bins = encodings.sum(dim: 0); // not sum(0): a literal 0 binds to the ScalarType overload
            if (!training)
            {
                if (TrackUsageInEval) EmaInPlace(ClusterSize, bins, Decay);
            }
            else
            {
                EmaInPlace(ClusterSize, bins, Decay);
                var zeroMask = bins.eq(0);
                var safeBins = bins.masked_fill(zeroMask, 1.0);
                var embedSum = zFlat.detach().t().matmul(encodings);
                var embedNormalized = nn.functional.normalize((embedSum / safeBins.unsqueeze(0)).t(), p: 2, dim: -1);
                embedNormalized = where(zeroMask.unsqueeze(-1), weight, embedNormalized);
                weight.mul_(Decay).add_(embedNormalized, alpha: 1 - Decay);
                weight.copy_(nn.functional.normalize(weight, p: 2, dim: -1));
            }
        }

        var loss = Beta * nn.functional.mse_loss(zq.detach(), z);
        var straightThrough = z + (zq - z).detach();
        var output = straightThrough.permute(0, 3, 1, 2);
        return new Quantization(output.MoveToOuterDisposeScope(), loss.MoveToOuterDisposeScope(), indices.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The code index of each position of a (B, C, H, W) input, (B·H·W) in b, h, w order, as <see cref="forward"/>
    /// assigns them, without anything else: no one-hot, no usage statistic, no codebook update, no check of
    /// the <c>initted</c> flag (a device round trip; whoever serves checks it once). Writes nothing, so
    /// concurrent callers share the module safely.
    /// </summary>
    public Tensor NearestCodes(Tensor zIn)
    {
        using var scope = NewDisposeScope();
        var z = nn.functional.normalize(zIn.permute(0, 2, 3, 1), p: 2, dim: -1);
        return Nearest(z.reshape(-1, CodebookDim)).MoveToOuterDisposeScope();
    }

    // Squared distances to every code (|z|² + |e|² − 2 z·e, the reference's order), arg-minimised.
    private Tensor Nearest(Tensor zFlat)
    {
        var weight = embedding.Weight;
        var d = zFlat.pow(2).sum(1, keepdim: true) + weight.pow(2).sum(1) - 2 * zFlat.matmul(weight.t());
        return d.argmin(1);
    }

    private static void EmaInPlace(Tensor movingAvg, Tensor value, double decay) =>
        movingAvg.mul_(decay).add_(value, alpha: 1 - decay);
}

/// <summary>
/// The codebook (<c>quantize.embedding</c>): unit-norm code vectors (a parameter the optimiser
/// does not train), the k-means bin counts, an <c>embed_avg</c> the reference never updates, and
/// the <c>initted</c> flag.
/// </summary>
public sealed class EmbeddingEma : ExplicitModule
{
    public int NumTokens { get; }
    public int CodebookDim { get; }

    public EmbeddingEma(int numTokens, int codebookDim, bool kmeansInit) : base(nameof(EmbeddingEma))
    {
        NumTokens = numTokens;
        CodebookDim = codebookDim;
        var weight = kmeansInit ? zeros(numTokens, codebookDim) : nn.functional.normalize(randn(numTokens, codebookDim), p: 2, dim: -1);
        var embedAvg = weight.clone();
        register_parameter("weight", ModuleExtensions.Param(weight, requiresGrad: false));
        register_parameter("cluster_size", ModuleExtensions.Param(zeros(numTokens), requiresGrad: false));
        register_parameter("embed_avg", ModuleExtensions.Param(embedAvg, requiresGrad: false));
        register_buffer("initted", tensor(new[] { kmeansInit ? 0f : 1f }));
    }

    public Tensor Weight => get_parameter("weight")!;
    public bool Initialised
    {
        get
        {
            // Compared as a tensor: the flag is float32, or float64 after to(float64).
            using var set = get_buffer("initted")!.ne(0);
            return set.item<bool>();
        }
    }

    /// <summary>Runs cosine k-means (10 iterations) on the first training batch, once.</summary>
    public void InitEmbed(Tensor data)
    {
        if (Initialised) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (means, bins) = KMeans.Cosine(data.detach(), NumTokens, 10);
        Weight.copy_(means);
        get_parameter("cluster_size")!.copy_(bins);
        get_buffer("initted")!.fill_(1f);
    }
}

/// <summary>k-means with cosine assignment on unit vectors, as the reference's <c>kmeans(use_cosine_sim=True)</c>.</summary>
public static class KMeans
{
    /// <returns>the l2-normalised means and the bin counts of the last assignment.</returns>
    public static (Tensor Means, Tensor Bins) Cosine(Tensor samples, int numClusters, int iterations, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        long n = samples.shape[0], dim = samples.shape[1];
        var indices = n >= numClusters
            ? randperm(n, generator: generator, device: samples.device)[..numClusters]
            : randint(0, n, new long[] { numClusters }, generator: generator, device: samples.device);
        var means = samples.index_select(0, indices);
        Tensor bins = zeros(numClusters, dtype: int64, device: samples.device);
        for (var i = 0; i < iterations; i++)
        {
            var buckets = samples.matmul(means.t()).argmax(-1);
            bins = bincount(buckets, minlength: numClusters);
            var zeroMask = bins.eq(0);
            var clamped = bins.masked_fill(zeroMask, 1);
            var newMeans = zeros(numClusters, dim, dtype: samples.dtype, device: samples.device)
                .scatter_add_(0, buckets.unsqueeze(-1).expand(-1, dim), samples);
            newMeans = nn.functional.normalize(newMeans / clamped.unsqueeze(-1), p: 2, dim: -1);
            means = where(zeroMask.unsqueeze(-1), means, newMeans);
        }
        return (means.MoveToOuterDisposeScope(), bins.to_type(samples.dtype).MoveToOuterDisposeScope());
    }
}
