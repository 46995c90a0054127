using System.IO.Compression;

namespace BeitV2.Ml.Checkpoints;

/// <summary>What a checkpoint file is, told from its first bytes and (for zips) its entry names only.</summary>
public enum CheckpointFileKind
{
    /// <summary>Neither of the formats below (e.g. a legacy non-zip pickle, or not a checkpoint at all).</summary>
    Unknown,
    /// <summary>An 8-byte little-endian header length, then a JSON object.</summary>
    Safetensors,
    /// <summary>A <c>torch.save</c> zip: <c>data.pkl</c> plus raw storages under <c>data/</c>.</summary>
    PyTorchZip,
    /// <summary>A <c>torch.jit.save</c> archive: Python code under <c>code/</c> next to its data.</summary>
    TorchScript,
}

/// <summary>
/// The kind check that comes before any parsing of a checkpoint. TorchScript archives are never
/// loaded: <c>jit.load</c> runs the archive's code (a scripted <c>__setstate__</c> runs inside the
/// process), so a file from anyone but the operator must not reach it, and no caller in this project
/// needs it (the OpenAI CLIP files convert to a state dict in one line, see <see cref="TorchScriptAdvice"/>).
/// Reading only the archive's tensor records would avoid running code, but its attribute layout differs per
/// scripted module and cannot be checked here against a real file, so refusing is the honest choice.
/// </summary>
public static class CheckpointFormat
{
    /// <summary>How to turn a TorchScript file (such as OpenAI's <c>ViT-B-16.pt</c>) into something this service reads.</summary>
    public const string TorchScriptAdvice =
        "TorchScript archives (torch.jit.save, e.g. OpenAI's CLIP ViT-B-16.pt) are not accepted, because loading one runs the code it contains. " +
        "Convert it on a machine you trust to a state dict .pth or a .safetensors file, e.g. " +
        "python -c \"import torch; torch.save(torch.jit.load('ViT-B-16.pt', map_location='cpu').state_dict(), 'ViT-B-16.pth')\", " +
        "and upload that.";

    public static CheckpointFileKind Detect(string path)
    {
        using var f = File.OpenRead(path);
        return Detect(f);
    }

    /// <summary>Reads the first bytes and, for a zip, its central directory (entry names); never a pickle.</summary>
    public static CheckpointFileKind Detect(Stream stream)
    {
        Span<byte> head = stackalloc byte[9];
        var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (n >= 4 && head[0] == 0x50 && head[1] == 0x4b && head[2] == 0x03 && head[3] == 0x04)
        {
            stream.Position = 0;
            try
            {
                using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
                if (zip.Entries.Any(IsTorchScriptEntry)) return CheckpointFileKind.TorchScript;
                return zip.Entries.Any(e => e.Name == "data.pkl") ? CheckpointFileKind.PyTorchZip : CheckpointFileKind.Unknown;
            }
            catch (InvalidDataException)
            {
                return CheckpointFileKind.Unknown;
            }
        }
        if (n == 9 && head[8] == (byte)'{' && BitConverter.ToUInt64(head[..8]) is > 1 and var len && len <= (ulong)stream.Length - 8)
            return CheckpointFileKind.Safetensors;
        return CheckpointFileKind.Unknown;
    }

    /// <summary>
    /// jit.save writes <c>{name}/code/**.py</c>, <c>{name}/constants.pkl</c> and <c>.debug_pkl</c> files; any one
    /// of them marks the archive as TorchScript (a torch.save zip has none of them).
    /// </summary>
    public static bool IsTorchScriptEntry(ZipArchiveEntry e)
    {
        var name = e.FullName.Replace('\\', '/');
        return name.StartsWith("code/", StringComparison.Ordinal) || name.Contains("/code/", StringComparison.Ordinal)
            || name.EndsWith(".py", StringComparison.Ordinal) || name.EndsWith(".debug_pkl", StringComparison.Ordinal)
            || e.Name == "constants.pkl";
    }
}
