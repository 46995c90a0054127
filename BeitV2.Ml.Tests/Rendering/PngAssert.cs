using System.Buffers.Binary;

namespace BeitV2.Ml.Tests.Rendering;

/// <summary>Checks on the raw bytes of a PNG file.</summary>
internal static class PngAssert
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Asserts the signature and the IHDR's size, bit depth and colour type (0 grey, 2 RGB).</summary>
    public static void Header(byte[] png, int width, int height, int bitDepth, int colorType)
    {
        Assert.Equal(Signature, png[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        Assert.Equal(width, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(height, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        Assert.Equal(bitDepth, png[24]);
        Assert.Equal(colorType, png[25]);
    }

    /// <summary>The chunk types in file order.</summary>
    public static List<string> ChunkTypes(byte[] png)
    {
        var types = new List<string>();
        for (int offset = 8; offset + 8 <= png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(offset));
            types.Add(System.Text.Encoding.ASCII.GetString(png, offset + 4, 4));
            offset += 12 + length;
        }
        return types;
    }
}
