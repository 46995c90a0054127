using BeitV2.Ml.Models.Layers;
using BeitV2.Ml.Checkpoints;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>
/// The CLIP image tower as the VQ-KD teacher (the published tokenizers use CLIP ViT-B/16): target =
/// ln_post(patch tokens) @ proj, 512-d. State-dict keys carry the official <c>visual.</c> prefix.
/// </summary>
public sealed class ClipTeacher : ExplicitModule<Tensor, Tensor>, IVqkdTeacher
{
    private readonly ClipVisionTransformer visual;
    private readonly ScalingLayer scaling = ScalingLayer.ForClip();

    public ClipTeacher(ClipVisionConfig config) : base(nameof(ClipTeacher))
    {
        visual = new ClipVisionTransformer(config);
        register_module("visual", visual);
    }

    public ClipVisionTransformer Visual => visual;
    public string Kind => "clip";
    public int OutputDim => visual.Config.OutputDim;
    public nn.Module Module => this;

    /// <summary>encode_image: the CLIP image embedding of already normalised images.</summary>
    public override Tensor forward(Tensor images) => visual.forward(images);

    public Tensor Scale(Tensor imagesPre) => scaling.forward(imagesPre);

    public Tensor GetRegressTarget(Tensor imagesPre)
    {
        using var _ = no_grad();
        using var scaled = Scale(imagesPre);
        return visual.RegressTarget(scaled);
    }

    /// <summary>
    /// Loads an OpenAI CLIP state dict (the official TorchScript <c>ViT-B-16.pt</c> converted once with
    /// <c>torch.save(torch.jit.load(path).state_dict(), ...)</c>: TorchScript archives are refused because
    /// loading one runs its code; fp16 weights are cast to float32 as <c>clip.load(device='cpu')</c> does),
    /// a <c>{'model': ...}</c> pickle, a VQ-KD
    /// training checkpoint (<c>teacher_model.visual.*</c>) or safetensors. The tower's shape is
    /// taken from the weights unless <paramref name="config"/> is given (heads cannot be inferred
    /// when they are not width/64).
    /// </summary>
    public static ClipTeacher Load(string path, ClipVisionConfig? config = null)
    {
        var sd = TeacherKeys.Visual(StateDictFile.Read(path), "visual.");
        var teacher = new ClipTeacher(config ?? ClipVisionConfig.FromStateDict(CheckpointKeys.SubTree(sd, "visual.")));
        StateDictLoader.Load(teacher, sd, "CLIP image tower");
        return teacher;
    }
}
