using TorchSharp;
using static TorchSharp.torch;

namespace BeitV2.Ml.Masking;

/// <summary>
/// Block-wise masking for BEiT v2 masked image modelling (unilm <c>beit2/masking_generator.py</c>,
/// <c>MaskingGenerator</c>): rectangles of random area and aspect ratio are masked until the target
/// count is reached or ten attempts in a row fail; the remainder is then filled (or trimmed) with
/// uniformly chosen single cells so that every mask has exactly <see cref="NumMaskingPatches"/> cells.
/// </summary>
/// <remarks>
/// The random stream cannot match Python's (Mersenne Twister + NumPy); only the distribution does.
/// An instance owns its <see cref="Random"/> and is <b>not thread-safe</b>: give each data-loading
/// worker its own generator (with its own seed).
/// </remarks>
public sealed class BlockMaskingGenerator
{
    // The reference gives up on a block after this many rejected rectangles.
    private const int AttemptsPerBlock = 10;

    private readonly Random _random;
    private readonly double _logAspectMin;
    private readonly double _logAspectMax;

    /// <summary>Creates a generator for a square <paramref name="inputSize"/>×<paramref name="inputSize"/> grid.</summary>
    /// <inheritdoc cref="BlockMaskingGenerator(ValueTuple{int, int}, int, int, int?, double, double?, int?, Random?)"/>
    public BlockMaskingGenerator(
        int inputSize, int numMaskingPatches, int minNumPatches = 4, int? maxNumPatches = null,
        double minAspect = 0.3, double? maxAspect = null, int? seed = null, Random? random = null)
        : this((inputSize, inputSize), numMaskingPatches, minNumPatches, maxNumPatches, minAspect, maxAspect, seed, random)
    {
    }

    /// <summary>Creates a generator for a grid of <c>inputSize.Height</c> rows and <c>inputSize.Width</c> columns.</summary>
    /// <param name="inputSize">Patch grid (rows, columns).</param>
    /// <param name="numMaskingPatches">Exact number of masked cells per mask (75 of 196 in the BEiT v2 recipe).</param>
    /// <param name="minNumPatches">Smallest target block area (the reference class default is 4; the pretraining recipe passes 16).</param>
    /// <param name="maxNumPatches">Largest target block area; null means <paramref name="numMaskingPatches"/>.</param>
    /// <param name="minAspect">Smallest block aspect ratio h/w.</param>
    /// <param name="maxAspect">Largest block aspect ratio; null means 1 / <paramref name="minAspect"/>.</param>
    /// <param name="seed">Seed for a private <see cref="Random"/>; mutually exclusive with <paramref name="random"/>.</param>
    /// <param name="random">Random source to use (the generator then shares it with the caller); null with no seed means an unseeded one.</param>
    public BlockMaskingGenerator(
        (int Height, int Width) inputSize, int numMaskingPatches, int minNumPatches = 4, int? maxNumPatches = null,
        double minAspect = 0.3, double? maxAspect = null, int? seed = null, Random? random = null)
    {
        var (height, width) = inputSize;
        if (height <= 0 || width <= 0)
            throw new ArgumentException($"The grid must be at least 1×1, got {height}×{width}.", nameof(inputSize));
        if (numMaskingPatches < 0 || numMaskingPatches > height * width)
            throw new ArgumentException(
                $"numMaskingPatches must be in 0..{height * width} for a {height}×{width} grid, got {numMaskingPatches}.",
                nameof(numMaskingPatches));
        if (minNumPatches < 0)
            throw new ArgumentException($"minNumPatches must be non-negative, got {minNumPatches}.", nameof(minNumPatches));
        if (maxNumPatches is <= 0)
            throw new ArgumentException($"maxNumPatches must be positive (or null), got {maxNumPatches}.", nameof(maxNumPatches));
        if (!(minAspect > 0) || double.IsInfinity(minAspect))
            throw new ArgumentException($"minAspect must be a positive finite number, got {minAspect}.", nameof(minAspect));
        if (maxAspect is { } ma && (!(ma > 0) || double.IsInfinity(ma)))
            throw new ArgumentException($"maxAspect must be a positive finite number (or null), got {ma}.", nameof(maxAspect));
        if (seed is not null && random is not null)
            throw new ArgumentException("Pass either a seed or a Random instance, not both.", nameof(random));

        Height = height;
        Width = width;
        NumMaskingPatches = numMaskingPatches;
        MinNumPatches = minNumPatches;
        MaxNumPatches = maxNumPatches ?? numMaskingPatches;
        MinAspect = minAspect;
        MaxAspect = maxAspect ?? 1.0 / minAspect;
        _logAspectMin = Math.Log(MinAspect);
        _logAspectMax = Math.Log(MaxAspect);
        _random = random ?? (seed is { } s ? new Random(s) : new Random());
    }

    /// <summary>Grid rows.</summary>
    public int Height { get; }

    /// <summary>Grid columns.</summary>
    public int Width { get; }

    /// <summary>Grid cells, <see cref="Height"/>·<see cref="Width"/>.</summary>
    public int NumPatches => Height * Width;

    /// <summary>Exact number of masked cells in every mask.</summary>
    public int NumMaskingPatches { get; }

    /// <summary>Smallest target block area.</summary>
    public int MinNumPatches { get; }

    /// <summary>Largest number of new cells one block may add.</summary>
    public int MaxNumPatches { get; }

    /// <summary>Smallest aspect ratio (h/w) of a block.</summary>
    public double MinAspect { get; }

    /// <summary>Largest aspect ratio (h/w) of a block.</summary>
    public double MaxAspect { get; }

    /// <summary>Draws one mask, row-major, with exactly <see cref="NumMaskingPatches"/> true entries.</summary>
    public bool[] Generate() => Draw().Mask;

    /// <summary>Draws one mask and reports how it was built (see <see cref="MaskDraw"/>).</summary>
    public MaskDraw Draw()
    {
        var mask = new bool[Height * Width];
        int count = 0, blocks = 0;
        while (count < NumMaskingPatches)
        {
            int budget = Math.Min(NumMaskingPatches - count, MaxNumPatches);
            int delta = TryBlock(mask, budget);
            if (delta == 0) break;
            count += delta;
            blocks++;
        }

        int maskedByBlocks = count;
        // The budget check makes overshooting impossible, but the reference handles it, so do we.
        if (count > NumMaskingPatches) Flip(mask, from: true, count - NumMaskingPatches);
        else if (count < NumMaskingPatches) Flip(mask, from: false, NumMaskingPatches - count);

        int total = 0;
        foreach (var m in mask) if (m) total++;
        if (total != NumMaskingPatches)
            throw new InvalidOperationException($"Internal error: mask has {total} cells, expected {NumMaskingPatches}.");
        return new MaskDraw(mask, maskedByBlocks, blocks);
    }

    /// <summary>
    /// Draws <paramref name="batchSize"/> masks into a bool tensor of shape (B, H·W), the layout of
    /// <c>bool_masked_pos</c> in the reference pretraining loop.
    /// </summary>
    public Tensor GenerateBatch(int batchSize, Device? device = null)
    {
        if (batchSize < 0) throw new ArgumentException($"batchSize must be non-negative, got {batchSize}.", nameof(batchSize));
        int n = NumPatches;
        var data = new bool[batchSize * n];
        for (int b = 0; b < batchSize; b++)
            Array.Copy(Generate(), 0, data, b * n, n);
        return torch.tensor(data, new long[] { batchSize, n }, device: device);
    }

    // One block: up to ten rectangles are proposed; the first that adds between 1 and `budget`
    // new cells is applied. Returns the number of new cells (0 = gave up).
    private int TryBlock(bool[] mask, int budget)
    {
        int delta = 0;
        for (int attempt = 0; attempt < AttemptsPerBlock; attempt++)
        {
            double targetArea = Uniform(MinNumPatches, budget);
            double aspect = Math.Exp(Uniform(_logAspectMin, _logAspectMax));
            // Python's round() is half-to-even; spelled out because the reference (beit2/masking_generator.py) rounds so.
            int h = (int)Math.Round(Math.Sqrt(targetArea * aspect), MidpointRounding.ToEven);
            int w = (int)Math.Round(Math.Sqrt(targetArea / aspect), MidpointRounding.ToEven);
            if (w < Width && h < Height)
            {
                // Python randint is inclusive at both ends.
                int top = _random.Next(0, Height - h + 1);
                int left = _random.Next(0, Width - w + 1);

                int alreadyMasked = 0;
                for (int i = top; i < top + h; i++)
                    for (int j = left; j < left + w; j++)
                        if (mask[i * Width + j]) alreadyMasked++;

                int newly = h * w - alreadyMasked;
                if (newly > 0 && newly <= budget)
                {
                    for (int i = top; i < top + h; i++)
                        for (int j = left; j < left + w; j++)
                        {
                            ref bool cell = ref mask[i * Width + j];
                            if (!cell)
                            {
                                cell = true;
                                delta++;
                            }
                        }
                }
            }

            if (delta > 0) break;
        }

        return delta;
    }

    // Python random.uniform(a, b) = a + (b - a) * random(); valid (and used) with b < a too.
    private double Uniform(double a, double b) => a + (b - a) * _random.NextDouble();

    // Sets `count` cells currently equal to `from` to `!from`, chosen uniformly without replacement
    // (the reference uses np.random.choice(..., replace=False)); partial Fisher–Yates shuffle.
    private void Flip(bool[] mask, bool from, int count)
    {
        var candidates = new List<int>(mask.Length);
        for (int k = 0; k < mask.Length; k++)
            if (mask[k] == from) candidates.Add(k);
        if (count > candidates.Count)
            throw new InvalidOperationException($"Internal error: cannot flip {count} of {candidates.Count} cells.");
        for (int k = 0; k < count; k++)
        {
            int pick = _random.Next(k, candidates.Count);
            (candidates[k], candidates[pick]) = (candidates[pick], candidates[k]);
            mask[candidates[k]] = !from;
        }
    }
}
