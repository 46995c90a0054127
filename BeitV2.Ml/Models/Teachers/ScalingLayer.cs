using BeitV2.Ml.Models.Layers;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// Maps the tokenizer's [−1, 1] images back to [0, 1] and normalises them for a teacher
/// (unilm <c>ScalingLayerForClip</c> / <c>ScalingLayerForIM</c>):
/// ((x + 1)·127.5).clamp(0, 255)/255, then (x − shift)/scale with the teacher's mean and std.
/// </summary>
public sealed class ScalingLayer : ExplicitModule<Tensor, Tensor>
{
    public static readonly float[] ClipMean = { 0.48145466f, 0.4578275f, 0.40821073f };
    public static readonly float[] ClipStd = { 0.26862954f, 0.26130258f, 0.27577711f };
    public static readonly float[] ImageNetMean = { 0.485f, 0.456f, 0.406f };
    public static readonly float[] ImageNetStd = { 0.229f, 0.224f, 0.225f };

    public ScalingLayer(float[] mean, float[] std) : base(nameof(ScalingLayer))
    {
        register_buffer("shift", tensor(mean).view(1, 3, 1, 1));
        register_buffer("scale", tensor(std).view(1, 3, 1, 1));
    }

    public static ScalingLayer ForClip() => new(ClipMean, ClipStd);
    public static ScalingLayer ForImageNet() => new(ImageNetMean, ImageNetStd);

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var unit = ((x + 1.0) * 127.5).clamp(0, 255.0) / 255.0;
        var shift = get_buffer("shift")!.to(x.device);
        var scale = get_buffer("scale")!.to(x.device);
        return ((unit - shift) / scale).MoveToOuterDisposeScope();
    }
}
