using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Reads a state dict from a PyTorch <c>.pth</c> (zip pickle, as written by <c>torch.save</c>),
/// a <c>.safetensors</c> file, or a TorchScript archive (the OpenAI CLIP files). Official BEiT v2
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
            var result = IsSafetensors(path) ? Safetensors.LoadStateDict(path)
                : IsTorchScript(path) ? ReadTorchScript(path)
                : Unwrap(PyTorchUnpickler.UnpickleStateDict(path));
            if (result.Count == 0)
                throw new CheckpointException(
                    $"'{Path.GetFileName(path)}' holds no tensors (weights are looked for under 'model', 'module' or 'state_dict', else at the root): it is not a model checkpoint.");
            return result;
        }
        catch (CheckpointException) { throw; }
        catch (Exception e)
        {
            throw new CheckpointException(
                $"Cannot read '{Path.GetFileName(path)}' as a PyTorch (.pth zip), safetensors or TorchScript file: {e.Message}", e);
        }
    }

    /// <summary>The safetensors layout: an 8-byte little-endian header length, then a JSON object.</summary>
    public static bool IsSafetensors(string path)
    {
        using var f = File.OpenRead(path);
        if (f.Length < 10) return false;
        Span<byte> head = stackalloc byte[9];
        f.ReadExactly(head);
        var len = BitConverter.ToUInt64(head[..8]);
        return head[8] == (byte)'{' && len > 1 && len < (ulong)f.Length;
    }

    /// <summary>A TorchScript archive is a zip that holds a <c>code/</c> folder next to its data.</summary>
    private static bool IsTorchScript(string path)
    {
        try
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            return zip.Entries.Any(e => e.FullName.Contains("/code/", StringComparison.Ordinal) && e.FullName.EndsWith(".py", StringComparison.Ordinal));
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    private static Dictionary<string, Tensor> ReadTorchScript(string path)
    {
        using var module = jit.load(path);
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, p) in module.named_parameters()) result[name] = p.detach().clone();
        foreach (var (name, b) in module.named_buffers()) result[name] = b.detach().clone();
        return result;
    }

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
