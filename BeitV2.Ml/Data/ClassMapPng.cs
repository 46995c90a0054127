using System.Buffers.Binary;
using System.IO.Compression;

namespace BeitV2.Ml.Data;

/// <summary>
/// Reads the raw sample values of a greyscale or palette PNG: the class indices of a segmentation
/// mask, which is what <c>np.asarray(PIL.Image.open(mask))</c> gives for modes L and P. A general
/// decoder cannot be used for this: it would map palette indices to colours.
/// </summary>
/// <remarks>
/// Accepted: 8-bit greyscale (colour type 0), palette (colour type 3) with 1, 2, 4 or 8 bits per
/// index (Pillow writes palettes of at most 16 colours with fewer bits), non-interlaced. Everything
/// else (RGB, alpha, 16-bit, low-bit greyscale, Adam7) is refused with a message saying why.
/// Chunk CRCs are verified; the pixel count is capped before inflating.
/// </remarks>
public static class ClassMapPng
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>Largest accepted width × height (the image decoder's default pixel limit).</summary>
    public const long MaxPixels = 64_000_000;

    /// <summary>Decodes the class indices of a mask PNG, row-major.</summary>
    /// <param name="data">The PNG file's bytes.</param>
    /// <param name="name">Name used in error messages.</param>
    /// <exception cref="DatasetException">Not a PNG, an unsupported PNG variant, or corrupt (<see cref="DatasetError.InvalidMask"/>).</exception>
    public static (byte[] Indices, int Width, int Height) Read(ReadOnlySpan<byte> data, string name)
    {
        if (data.Length < 8 || !data[..8].SequenceEqual(Signature))
            throw Invalid(name, "is not a PNG file (masks must be 8-bit PNGs of class indices)");

        int width = 0, height = 0, bitDepth = 0, colorType = -1;
        using var idat = new MemoryStream();
        int i = 8;
        bool sawHeader = false, sawEnd = false;
        while (!sawEnd)
        {
            if (data.Length - i < 12) throw Invalid(name, "is truncated (the PNG data ends before its IEND chunk)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            if (length > int.MaxValue || data.Length - i - 12 < (long)length)
                throw Invalid(name, "is truncated (a PNG chunk runs past the end of the file)");
            var type = data.Slice(i + 4, 4);
            var body = data.Slice(i + 8, (int)length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(data[(i + 8 + (int)length)..]);
            if (Crc(data.Slice(i + 4, 4 + (int)length)) != crc)
                throw Invalid(name, $"is corrupt (bad CRC in the {System.Text.Encoding.ASCII.GetString(type)} chunk)");

            if (type.SequenceEqual("IHDR"u8))
            {
                if (length != 13) throw Invalid(name, "has a malformed IHDR chunk");
                width = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(body), int.MaxValue);
                height = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(body[4..]), int.MaxValue);
                bitDepth = body[8];
                colorType = body[9];
                if (width <= 0 || height <= 0) throw Invalid(name, $"declares a size of {width}x{height}");
                if ((long)width * height > MaxPixels)
                    throw Invalid(name, $"is {width}x{height} pixels; at most {MaxPixels} are accepted");
                if (body[10] != 0 || body[11] != 0) throw Invalid(name, "uses an unknown PNG compression or filter method");
                if (body[12] != 0) throw Invalid(name, "is interlaced (Adam7); save the mask without interlacing");
                bool ok = colorType switch
                {
                    0 => bitDepth == 8,
                    3 => bitDepth is 1 or 2 or 4 or 8,
                    _ => false,
                };
                if (!ok)
                    throw Invalid(name, $"is {Describe(colorType, bitDepth)}; a mask must be an 8-bit greyscale "
                        + "or a palette PNG whose values are class indices");
                sawHeader = true;
            }
            else if (type.SequenceEqual("IDAT"u8))
            {
                if (!sawHeader) throw Invalid(name, "has image data before its header");
                idat.Write(body);
            }
            else if (type.SequenceEqual("IEND"u8))
            {
                sawEnd = true;
            }
            i += 12 + (int)length;
        }
        if (!sawHeader) throw Invalid(name, "has no IHDR chunk");

        int rowBytes = (int)(((long)width * bitDepth + 7) / 8);
        var raw = new byte[checked((long)height * (rowBytes + 1))];
        idat.Position = 0;
        try
        {
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            z.ReadExactly(raw);
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException)
        {
            throw Invalid(name, "has corrupt or too little compressed image data", ex);
        }

        Unfilter(raw, rowBytes, height, name);
        return (Unpack(raw, rowBytes, width, height, bitDepth), width, height);
    }

    // PNG filters with 1 byte per pixel (also the filter unit for sub-byte depths).
    private static void Unfilter(byte[] raw, int rowBytes, int height, string name)
    {
        int stride = rowBytes + 1;
        for (int y = 0; y < height; y++)
        {
            int row = y * stride + 1, prev = row - stride;
            byte filter = raw[row - 1];
            for (int x = 0; x < rowBytes; x++)
            {
                int a = x > 0 ? raw[row + x - 1] : 0;
                int b = y > 0 ? raw[prev + x] : 0;
                int c = x > 0 && y > 0 ? raw[prev + x - 1] : 0;
                int predictor = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) >> 1,
                    4 => Paeth(a, b, c),
                    _ => throw Invalid(name, $"uses an unknown PNG row filter ({filter})"),
                };
                raw[row + x] = (byte)(raw[row + x] + predictor);
            }
        }
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static byte[] Unpack(byte[] raw, int rowBytes, int width, int height, int bitDepth)
    {
        var result = new byte[checked(width * height)];
        int stride = rowBytes + 1, perByte = 8 / bitDepth, valueMask = (1 << bitDepth) - 1;
        for (int y = 0; y < height; y++)
        {
            int row = y * stride + 1, dst = y * width;
            if (bitDepth == 8)
            {
                raw.AsSpan(row, width).CopyTo(result.AsSpan(dst));
                continue;
            }
            for (int x = 0; x < width; x++)
            {
                int shift = 8 - bitDepth * (x % perByte + 1); // most significant bits first
                result[dst + x] = (byte)((raw[row + x / perByte] >> shift) & valueMask);
            }
        }
        return result;
    }

    private static string Describe(int colorType, int bitDepth) => colorType switch
    {
        0 => $"a {bitDepth}-bit greyscale PNG",
        2 => $"an RGB PNG ({bitDepth} bits per channel)",
        3 => $"a {bitDepth}-bit palette PNG",
        4 => "a greyscale PNG with alpha",
        6 => "an RGBA PNG",
        _ => $"a PNG of unknown colour type {colorType}",
    };

    private static DatasetException Invalid(string name, string problem, Exception? inner = null) =>
        new(DatasetError.InvalidMask, $"Mask '{name}' {problem}.", inner);

    internal static uint Crc(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in bytes) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
