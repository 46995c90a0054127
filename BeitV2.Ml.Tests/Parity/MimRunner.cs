using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary><c>VisionTransformerForMaskedImageModelingCLS</c>: masked logits of both branches, losses, all-token outputs, block outputs.</summary>
public sealed class MimRunner : IParityRunner
{
    public Dictionary<string, Tensor> Run(FixtureDescriptor f, WeightSource source, IReadOnlyDictionary<string, Tensor> io)
    {
        var config = ModelJson.Deserialize<MimConfig>(f.Config, f.Stem);
        using var model = new BeitMim(config);
        MimCheckpoint.Load(model, source == WeightSource.OfficialPth ? f.WeightsPth : f.WeightsSafetensors);
        model.OnDevice().eval();
        using var _ = inference_mode();
        var images = io["images"].On();
        var mask = io["bool_masked_pos"].On();
        var result = new Dictionary<string, Tensor>();
        var logits = model.forward(images, mask);
        result["logits_final"] = logits[0];
        result["logits_agg"] = logits[1];
        var loss = model.Loss(images, mask, io["input_ids"].On());
        result["loss_final"] = loss.Final;
        result["loss_agg"] = loss.Aggregated;
        result["loss_total"] = loss.Total;
        var patches = model.ForwardPatchTokens(images, mask);
        result["patch_tokens_final"] = patches[0];
        result["patch_tokens_agg"] = patches[1];
        var all = model.ForwardAllTokens(images, mask);
        result["logits_all_final"] = all[0];
        result["logits_all_agg"] = all[1];
        using var features = model.ForwardFeatures(images, mask, keepHidden: true);
        for (var i = 0; i < features.Hidden.Count; i++) result[$"hidden_{i}"] = features.Hidden[i].clone();
        for (var i = 0; i < features.AggregationHidden.Count; i++) result[$"agg_hidden_{i}"] = features.AggregationHidden[i].clone();
        // The stored labels are input_ids[bool_masked_pos]; recomputing them checks our masked-selection order.
        result["labels"] = io["input_ids"].On()[TensorIndex.Tensor(mask)];
        return result;
    }
}
