using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Reads a state dict from a PyTorch <c>.pth</c> (zip pickle, as written by <c>torch.save</c>),
/// or a <c>.safetensors</c> file. TorchScript archives (the OpenAI CLIP files) are refused with the
/// one-line conversion (<see cref="CheckpointFormat"/> says why). Each file is checked against its own
/// declared sizes before the reader allocates anything (<see cref="SafetensorsCheck"/>, <see cref="PthArchiveCheck"/>). Official BEiT v2
/// files keep their weights under 'model' (or 'module' / 'state_dict'); the first of these that
/// is present is taken, otherwise the root. Non-tensor entries (epochs, args, ints) are dropped.
/// </summary>
public static class StateDictFile
{
    private static readonly string[] Containers = { "model", "module", "state_dict" };

    public static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException($"Checkpoint file not found: {path}");
        try
        {
            Dictionary<string, Tensor> result;
            switch (CheckpointFormat.Detect(path))
            {
                case CheckpointFileKind.Safetensors:
                    SafetensorsCheck.Validate(path);
                    result = Safetensors.LoadStateDict(path);
                    break;
                case CheckpointFileKind.PyTorchZip:
                    PthArchiveCheck.Validate(path);
                    result = Unwrap(PyTorchUnpickler.UnpickleStateDict(path));
                    break;
                case CheckpointFileKind.TorchScript:
                    throw new CheckpointException($"'{Path.GetFileName(path)}': {CheckpointFormat.TorchScriptAdvice}");
                default:
                    throw new CheckpointException(
                        $"Cannot read '{Path.GetFileName(path)}': it is neither a PyTorch zip (.pth written by torch.save) nor a safetensors file.");
            }
            if (result.Count == 0)
                throw new CheckpointException(
                    $"'{Path.GetFileName(path)}' holds no tensors (weights are looked for under 'model', 'module' or 'state_dict', else at the root): it is not a model checkpoint.");
            return result;
        }
        catch (CheckpointException) { throw; }
        catch (Exception e)
        {
            throw new CheckpointException(
                $"Cannot read '{Path.GetFileName(path)}' as a PyTorch (.pth zip) or safetensors file: {e.Message}", e);
        }
    }

    /// <summary>The safetensors layout: an 8-byte little-endian header length, then a JSON object.</summary>
    public static bool IsSafetensors(string path) => CheckpointFormat.Detect(path) == CheckpointFileKind.Safetensors;

    private static Dictionary<string, Tensor> Unwrap(Hashtable root)
    {
        IDictionary dict = root;
        foreach (var key in Containers)
        {
            if (root[key] is IDictionary inner)
            {
                dict = inner;
                break;
            }
        }
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in dict)
            if (e.Key is string k && e.Value is Tensor t)
                result[k] = t;
        return result;
    }
}
