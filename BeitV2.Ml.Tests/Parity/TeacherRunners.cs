using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>The CLIP image tower as the VQ-KD teacher.</summary>
public sealed class ClipTeacherRunner : IParityRunner
{
    public Dictionary<string, Tensor> Run(FixtureDescriptor f, WeightSource source, IReadOnlyDictionary<string, Tensor> io)
    {
        var config = ModelJson.Deserialize<ClipVisionConfig>(f.Config, f.Stem);
        using var teacher = ClipTeacher.Load(source == WeightSource.OfficialPth ? f.WeightsPth : f.WeightsSafetensors, config);
        teacher.OnDevice().eval();
        using var _ = inference_mode();
        var pre = VqkdPreProcess.Default(io["images_raw"].On());
        var scaled = io["images_scaled"].On();
        using var tokens = teacher.Visual.ForwardTokens(scaled, keepHidden: true);
        var result = new Dictionary<string, Tensor>
        {
            ["images_scaled"] = teacher.Scale(pre),
            ["regress_target"] = teacher.GetRegressTarget(pre),
            ["cls_embedding"] = teacher.forward(scaled),
            ["patch_tokens"] = tokens.Tokens[.., 1..].clone(),
            ["ln_pre_out"] = tokens.LnPre.clone(),
        };
        for (var i = 0; i < tokens.Hidden.Count; i++) result[$"hidden_{i}"] = tokens.Hidden[i].clone();
        return result;
    }
}

/// <summary>The DINO ViT as the VQ-KD teacher.</summary>
public sealed class DinoTeacherRunner : IParityRunner
{
    public Dictionary<string, Tensor> Run(FixtureDescriptor f, WeightSource source, IReadOnlyDictionary<string, Tensor> io)
    {
        var config = ModelJson.Deserialize<DinoConfig>(f.Config, f.Stem);
        using var teacher = DinoVisionTransformer.Load(source == WeightSource.OfficialPth ? f.WeightsPth : f.WeightsSafetensors, config);
        teacher.OnDevice().eval();
        using var _ = inference_mode();
        var pre = VqkdPreProcess.Default(io["images_raw"].On());
        var scaled = io["images_scaled"].On();
        var (tokens, hidden) = teacher.ForwardTokens(scaled, keepHidden: true);
        var result = new Dictionary<string, Tensor>
        {
            ["images_scaled"] = teacher.Scale(pre),
            ["regress_target"] = teacher.GetRegressTarget(pre),
            ["cls_embedding"] = teacher.forward(scaled),
        };
        for (var i = 0; i < hidden.Count; i++) result[$"hidden_{i}"] = hidden[i];
        tokens.Dispose();
        return result;
    }
}
