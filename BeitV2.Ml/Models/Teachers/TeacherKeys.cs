using BeitV2.Ml.Models.Layers;
using BeitV2.Ml.Checkpoints;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Teachers;

/// <summary>Finds a teacher's weights in the layouts they come in.</summary>
internal static class TeacherKeys
{
    /// <summary>
    /// Strips <c>module.</c> and a VQ-KD checkpoint's <c>teacher_model.</c> prefix, keeps only keys
    /// starting with <paramref name="keep"/> (all when empty), and casts to float32 (the official
    /// CLIP file stores fp16; the reference runs the teacher in float32).
    /// </summary>
    public static Dictionary<string, Tensor> Visual(IReadOnlyDictionary<string, Tensor> raw, string keep)
    {
        var sd = CheckpointKeys.Normalize(raw);
        if (sd.Keys.Any(k => k.StartsWith("teacher_model.", StringComparison.Ordinal)))
            sd = CheckpointKeys.SubTree(sd, "teacher_model.");
        return sd.Where(kv => keep.Length == 0 || kv.Key.StartsWith(keep, StringComparison.Ordinal))
                 .ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to_type(float32) : kv.Value, StringComparer.Ordinal);
    }
}
