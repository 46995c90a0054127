using System.Buffers.Binary;
using System.Text.Json;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Checks a safetensors file's header against the file before the reader (TorchSharp.PyBridge) allocates
/// anything: it would otherwise allocate the header's declared length (up to 2 GB) and every tensor's
/// declared shape before looking at the offsets. Rules (those of the reference implementation): header at most
/// 100 MB and inside the file; every tensor's byte range matches its dtype and shape; the ranges are
/// contiguous from 0, do not overlap, and end exactly at the end of the file.
/// </summary>
public static class SafetensorsCheck
{
    /// <summary>The reference implementation's limit (safetensors' MAX_HEADER_SIZE).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, int> ElementSizes = new(StringComparer.Ordinal)
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <exception cref="CheckpointException">the header is too large, malformed or does not fit the file.</exception>
    public static void Validate(string path)
    {
        using var f = File.OpenRead(path);
        var name = Path.GetFileName(path);
        var fileLength = f.Length;
        if (fileLength < 8) throw Bad(name, "the file is shorter than its 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        f.ReadExactly(lenBytes);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength > MaxHeaderBytes)
            throw Bad(name, $"its header declares {headerLength} bytes; the limit is {MaxHeaderBytes} bytes");
        if ((long)headerLength > fileLength - 8)
            throw Bad(name, $"its header declares {headerLength} bytes but the file has only {fileLength - 8} after the length");

        var header = new byte[headerLength];
        f.ReadExactly(header);
        var dataLength = fileLength - 8 - (long)headerLength;
        var ranges = new List<(long Begin, long End, string Key)>();
        try
        {
            using var doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(name, "its header is not a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") continue;
                ranges.Add(Entry(name, p, dataLength));
            }
        }
        catch (JsonException e)
        {
            throw Bad(name, $"its header is not valid JSON ({e.Message})");
        }

        long expected = 0;
        foreach (var (begin, end, key) in ranges.OrderBy(r => r.Begin).ThenBy(r => r.End))
        {
            if (begin != expected)
                throw Bad(name, begin < expected
                    ? $"the bytes of '{key}' overlap those of another tensor"
                    : $"there is a gap of {begin - expected} bytes before '{key}' (tensor data must be contiguous)");
            expected = end;
        }
        if (expected != dataLength)
            throw Bad(name, $"its tensors cover {expected} bytes but the file holds {dataLength} bytes of data");
    }

    private static (long, long, string) Entry(string file, JsonProperty p, long dataLength)
    {
        var e = p.Value;
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Bad(file, $"the entry '{p.Name}' needs a dtype, a shape and two data_offsets");
        if (!ElementSizes.TryGetValue(dtype.GetString()!, out var size))
            throw Bad(file, $"'{p.Name}' has the unsupported dtype '{dtype.GetString()}'");
        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw Bad(file, $"'{p.Name}' has invalid data_offsets");
        if (end > dataLength)
            throw Bad(file, $"'{p.Name}' ends at byte {end} of the data but the file holds only {dataLength}");
        long bytes = size;
        foreach (var d in shape.EnumerateArray())
        {
            if (!d.TryGetInt64(out var dim) || dim < 0) throw Bad(file, $"'{p.Name}' has an invalid shape");
            // The data range is inside the file, so a product above it is a lie: stop before overflowing.
            if (dim != 0 && bytes > dataLength / dim) throw Bad(file, $"the shape of '{p.Name}' declares more bytes than the file holds");
            bytes *= dim;
        }
        if (bytes != end - begin)
            throw Bad(file, $"'{p.Name}' declares {bytes} bytes by its dtype and shape but {end - begin} by its data_offsets");
        return (begin, end, p.Name);
    }

    private static CheckpointException Bad(string file, string why) =>
        new($"'{file}' is not a usable safetensors file: {why}.");
}
