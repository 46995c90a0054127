using System.Security.Cryptography;
using Google.Protobuf;
using Onnx;

namespace BeitV2.Ml.Onnx;

/// <summary>One file of a written graph: its name, size and SHA-256 (what the cache verifies before serving it).</summary>
public sealed record OnnxGraphFile(string Name, long Bytes, string Sha256);

/// <summary>
/// Writes a graph as ONNX "external data" (onnx/onnx docs/ExternalData.md): the weights go to a side file at
/// page-aligned offsets and the <c>.onnx</c> file keeps only the graph and references to them. ONNX Runtime then reads
/// the weights from that file itself (memory-mapping it where it can), so loading a cached graph needs no second,
/// managed copy of the weights, and the writer releases each initializer's bytes as soon as they are on disk.
/// </summary>
public static class OnnxExternalData
{
    /// <summary>Initializers at least this large go to the data file; shape constants and scalars stay inline.</summary>
    public const int MinExternalBytes = 1024;
    /// <summary>Offsets in the data file are multiples of this (the page size): ONNX Runtime maps aligned ranges directly.</summary>
    public const int Alignment = 4096;

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="directory"/>/<paramref name="modelFile"/> with its large initializers in
    /// <paramref name="dataFile"/> beside it (both fsynced). The model's large initializers are rewritten to point at the
    /// data file: the proto is consumed.
    /// </summary>
    public static IReadOnlyList<OnnxGraphFile> Write(ModelProto model, string directory, string modelFile, string dataFile)
    {
        var dataPath = Path.Combine(directory, dataFile);
        var padding = new byte[Alignment];
        using var dataHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long offset = 0;
        using (var data = new FileStream(dataPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
        {
            foreach (var t in model.Graph.Initializer)
            {
                if (t.DataLocation == TensorProto.Types.DataLocation.External || t.RawData.Length < MinExternalBytes) continue;
                var pad = (int)((Alignment - offset % Alignment) % Alignment);
                if (pad > 0)
                {
                    data.Write(padding, 0, pad);
                    dataHash.AppendData(padding, 0, pad);
                    offset += pad;
                }
                var bytes = t.RawData.Span;
                data.Write(bytes);
                dataHash.AppendData(bytes);
                t.DataLocation = TensorProto.Types.DataLocation.External;
                t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataFile });
                t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                offset += bytes.Length;
                t.RawData = ByteString.Empty;
            }
            data.Flush(flushToDisk: true);
        }
        var graph = model.ToByteArray();
        Checkpoints.DurableFiles.WriteAllBytes(Path.Combine(directory, modelFile), graph);
        return
        [
            new OnnxGraphFile(modelFile, graph.LongLength, Convert.ToHexStringLower(SHA256.HashData(graph))),
            new OnnxGraphFile(dataFile, offset, Convert.ToHexStringLower(dataHash.GetHashAndReset())),
        ];
    }
}
