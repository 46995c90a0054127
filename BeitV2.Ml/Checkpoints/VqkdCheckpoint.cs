using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Loads a VQ-KD tokenizer as the reference does with <c>as_tokenzer=True</c> (unilm beit2/modeling_vqkd.py): weights
/// under 'model' or 'state_dict', every key starting with "loss", "teacher" or "scaling" dropped,
/// then a strict load.
/// </summary>
public static class VqkdCheckpoint
{
    private static readonly string[] Dropped = { "loss", "teacher", "scaling" };

    public static void Load(VqkdTokenizer model, string path) => Load(model, StateDictFile.Read(path));

    public static void Load(VqkdTokenizer model, IReadOnlyDictionary<string, Tensor> raw)
    {
        var sd = CheckpointKeys.Normalize(raw)
            .Where(kv => !Dropped.Any(p => kv.Key.StartsWith(p, StringComparison.Ordinal)))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        StateDictLoader.Load(model, sd, "VQ-KD tokenizer");
    }
}
