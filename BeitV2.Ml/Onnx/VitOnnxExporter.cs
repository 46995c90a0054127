using BeitV2.Ml.Models;
using Onnx;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// <see cref="BeitVisionTransformer"/> (backbone or classifier) as an ONNX graph: outputs <see cref="OnnxNames.Cls"/>
/// and <see cref="OnnxNames.Mean"/> as <c>ServedVit.Features</c> computes them, and <see cref="OnnxNames.Probs"/> with a
/// head; with diagnostics also <c>logits</c>, <c>features</c> (the head input) and <c>hidden_i</c>, the names of the
/// <c>vit_cls</c> fixture.
/// </summary>
public static class VitOnnxExporter
{
    public static ModelProto Export(BeitVisionTransformer model, OnnxExportOptions options)
    {
        var c = model.Config;
        var sd = OnnxLayers.Weights(model);
        var g = options.NewGraph("beit_vit");
        long C = c.EmbedDim, T = c.NumPatches + 1;
        g.Input(OnnxNames.Images, new long?[] { null, c.InChans, c.ImgSize, c.ImgSize });
        var trunk = VitTrunkOnnx.Write(g, model, model.Trunk, "", OnnxNames.Images);

        // Final norm (identity with mean pooling), then the head input: fc_norm(mean of patches) or norm(x)[:, 0].
        var tokens = c.UseMeanPooling ? trunk.Tokens : g.LayerNorm(sd, "norm", trunk.Tokens, c.NormEps);
        var features = c.UseMeanPooling
            ? g.LayerNorm(sd, "fc_norm", g.MeanOverTokens(g.PatchTokens(tokens)), c.NormEps)
            : g.TokenAt(tokens, 0);
        g.OutputAs(g.TokenAt(tokens, 0), OnnxNames.Cls, new long?[] { null, C });
        g.OutputAs(c.UseMeanPooling ? features : g.MeanOverTokens(g.PatchTokens(tokens)), OnnxNames.Mean, new long?[] { null, C });
        if (c.NumClasses > 0)
        {
            var logits = g.Linear(sd, "head", features);
            g.OutputAs(g.Softmax(logits), OnnxNames.Probs, new long?[] { null, c.NumClasses });
            if (options.Diagnostics) g.OutputAs(logits, "logits", new long?[] { null, c.NumClasses });
        }
        if (options.Diagnostics)
        {
            g.OutputAs(features, "features", new long?[] { null, C });
            for (var i = 0; i < trunk.Hidden.Count; i++) g.OutputAs(trunk.Hidden[i], OnnxNames.Hidden(i), new long?[] { null, T, C });
        }
        return g.ToModel($"BEiT v2 ViT ({c.ImgSize}px, {c.Depth} blocks, {C} wide)");
    }
}
