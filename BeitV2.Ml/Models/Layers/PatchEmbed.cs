using BeitV2.Ml.Precision;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

/// <summary>
/// Image to patch embedding: a stride-p convolution, flattened row-major into (B, N, C), so token n
/// is the patch at row n / G, column n % G.
/// </summary>
public sealed class PatchEmbed : ExplicitModule<Tensor, Tensor>
{
    private readonly Conv2d proj;

    public int PatchSize { get; }
    public int GridSize { get; }
    public int NumPatches => GridSize * GridSize;

    public PatchEmbed(int imgSize, int patchSize, int inChans, int embedDim, bool bias = true) : base(nameof(PatchEmbed))
    {
        PatchSize = patchSize;
        GridSize = imgSize / patchSize;
        proj = nn.Conv2d(inChans, embedDim, kernel_size: patchSize, stride: patchSize, bias: bias);
        register_module("proj", proj);
    }

    internal Conv2d Proj => proj;

    public override Tensor forward(Tensor x)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"Expected images of shape (B, C, H, W), got ({string.Join(", ", x.shape)}).");
        using var scope = NewDisposeScope();
        // Under autocast the convolution runs in low precision; the token stream starts in float32.
        var y = Autocast.Float32(Autocast.Conv(proj, x));
        return y.flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }
}
