using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>Key clean-up common to every official file (the unilm BEiT v2 releases and timm's beit.py: weights under 'model', 'module' or 'state_dict', 'module.' prefixes).</summary>
public static class CheckpointKeys
{
    /// <summary>
    /// Strips a leading <c>module.</c> (DeepSpeed/DDP files) and drops every stored
    /// <c>relative_position_index</c> (recomputed by the model from its window).
    /// </summary>
    public static Dictionary<string, Tensor> Normalize(IReadOnlyDictionary<string, Tensor> raw)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in raw)
        {
            var k = key.StartsWith("module.", StringComparison.Ordinal) ? key["module.".Length..] : key;
            if (k.EndsWith("relative_position_index", StringComparison.Ordinal)) continue;
            result[k] = value;
        }
        return result;
    }

    /// <summary>Keeps the keys under <paramref name="prefix"/>, without the prefix (e.g. "encoder.").</summary>
    public static Dictionary<string, Tensor> SubTree(IReadOnlyDictionary<string, Tensor> sd, string prefix) =>
        sd.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal))
          .ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value, StringComparer.Ordinal);
}
