using System.Buffers.Binary;
using System.IO.Compression;

namespace BeitV2.Ml.Data;

/// <summary>
/// Reader for the IDX files of MNIST and Fashion-MNIST: a big-endian header
/// (0, 0, type 0x08 = unsigned byte, number of dimensions; then one uint32 per dimension) followed by
/// the values. The file may be gzipped (detected from its magic bytes, not its name).
/// </summary>
internal static class IdxFile
{
    private const byte UnsignedByte = 0x08;

    // Far above Fashion-MNIST's 47 MB; stops a bogus header from allocating gigabytes.
    private const long MaxValues = 1L << 30;

    /// <summary>Reads a uint8 IDX file with <paramref name="dimensions"/> dimensions.</summary>
    /// <returns>The dimension sizes and the values (exactly their product, no trailing bytes allowed).</returns>
    public static (int[] Shape, byte[] Data) ReadBytes(string path, int dimensions)
    {
        using var file = File.OpenRead(path);
        var head = new byte[2];
        int got = file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
        file.Position = 0;
        using Stream stream = got == 2 && head[0] == 0x1F && head[1] == 0x8B
            ? new GZipStream(file, CompressionMode.Decompress)
            : file;
        var name = Path.GetFileName(path);
        try
        {
            var magic = new byte[4];
            stream.ReadExactly(magic);
            if (magic[0] != 0 || magic[1] != 0 || magic[2] != UnsignedByte || magic[3] != dimensions)
                throw Invalid(name, $"magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(magic):X8}; expected "
                    + $"0x{0x800 | dimensions:X8} (unsigned bytes, {dimensions} dimension(s))");
            var shape = new int[dimensions];
            long count = 1;
            var dim = new byte[4];
            for (int d = 0; d < dimensions; d++)
            {
                stream.ReadExactly(dim);
                uint size = BinaryPrimitives.ReadUInt32BigEndian(dim);
                if (size == 0 || size > int.MaxValue) throw Invalid(name, $"dimension {d} has size {size}");
                shape[d] = (int)size;
                count *= size;
                if (count > MaxValues) throw Invalid(name, $"declares more than {MaxValues} values");
            }
            var data = new byte[count];
            stream.ReadExactly(data);
            if (stream.ReadByte() != -1) throw Invalid(name, $"has data after the {count} declared values");
            return (shape, data);
        }
        catch (EndOfStreamException ex)
        {
            throw Invalid(name, "ends before the data its header declares", ex);
        }
        catch (InvalidDataException ex)
        {
            throw Invalid(name, $"is not valid gzip data ({ex.Message})", ex);
        }
    }

    private static DatasetException Invalid(string name, string problem, Exception? inner = null) =>
        new(DatasetError.InvalidData, $"IDX file '{name}' {problem}.", inner);
}
