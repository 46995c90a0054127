using System.Buffers.Binary;
using System.Text;

namespace BeitV2.TestSupport;

/// <summary>
/// Hand-made image headers for the decoder's limit tests: they claim any size without carrying
/// (or making the test allocate) the pixels.
/// </summary>
public static class CraftedImages
{
    /// <summary>A 54-byte 24-bit BMP header declaring width×height, with no pixel data.</summary>
    public static byte[] BmpHeader(int width, int height)
    {
        var b = new byte[54];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), 54);   // file size (a lie for large images)
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);  // pixel data offset
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);  // BITMAPINFOHEADER
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);   // planes
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);  // bits per pixel
        return b;                                                    // compression 0 = BI_RGB
    }

    /// <summary>PNG signature + a valid (CRC-checked) IHDR for an 8-bit RGB image, then IEND; no IDAT.</summary>
    public static byte[] PngHeader(int width, int height)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 2;  // colour type RGB
        WriteChunk(ms, "IHDR", ihdr);
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>
    /// A PNG with a complete chunk structure whose IDAT inflates to one byte while IHDR declares width×height RGB
    /// pixels: 66 bytes "of" any size (a pixel flood).
    /// </summary>
    public static byte[] PngWithShortIdat(int width, int height)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        WriteChunk(ms, "IHDR", ihdr);
        WriteChunk(ms, "IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]);   // zlib of one 0x00 byte
        WriteChunk(ms, "IEND", []);
        return ms.ToArray();
    }

    private static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(u32, data.Length);
        s.Write(u32);
        var typeAndData = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(u32, Crc32(typeAndData));
        s.Write(u32);
    }

    // The PNG/zlib CRC-32 (reflected polynomial 0xEDB88320), bit by bit: slow but tiny.
    public static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int i = 0; i < 8; i++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
