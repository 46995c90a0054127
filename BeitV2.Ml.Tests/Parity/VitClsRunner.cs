using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary><c>modeling_finetune.VisionTransformer</c>: logits, head input, block outputs.</summary>
public sealed class VitClsRunner : IParityRunner
{
    public Dictionary<string, Tensor> Run(FixtureDescriptor f, WeightSource source, IReadOnlyDictionary<string, Tensor> io)
    {
        var config = ModelJson.Deserialize<VitConfig>(f.Config, f.Stem);
        using var model = new BeitVisionTransformer(config);
        VitCheckpoint.Load(model, source == WeightSource.OfficialPth ? f.WeightsPth : f.WeightsSafetensors);
        model.OnDevice().eval();
        using var _ = inference_mode();
        using var output = model.ForwardFeatures(io["images"].On(), keepHidden: true);
        var result = new Dictionary<string, Tensor>
        {
            ["logits"] = model.ForwardHead(output.Features),
            ["features"] = output.Features.clone(),
        };
        for (var i = 0; i < output.Hidden.Count; i++) result[$"hidden_{i}"] = output.Hidden[i].clone();
        return result;
    }
}
