using System.Buffers.Binary;
using System.IO.Compression;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.TestSupport;

/// <summary>Writes the tiny images, masks and archives the data tests use.</summary>
public static class DataTestFiles
{
    /// <summary>A solid-colour RGB PNG.</summary>
    public static void WriteRgbPng(string path, int width, int height, byte r, byte g, byte b)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = new Image<Rgb24>(width, height, new Rgb24(r, g, b));
        image.SaveAsPng(path);
    }

    /// <summary>An RGB PNG from an <see cref="RgbBuffer"/>.</summary>
    public static void WriteRgbPng(string path, RgbBuffer buffer)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = buffer.ToImage();
        image.SaveAsPng(path);
    }

    /// <summary>An 8-bit greyscale PNG whose values are class indices.</summary>
    public static void WriteGreyMask(string path, byte[] indices, int width, int height)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var image = Image.LoadPixelData<L8>(indices, width, height);
        image.SaveAsPng(path, new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit8 });
    }

    /// <summary>
    /// A palette PNG written by hand (ImageSharp would re-quantise the palette), with the given
    /// indices packed at <paramref name="bitDepth"/> bits, most significant first; rows use the Sub
    /// filter on odd rows and Paeth on even ones to exercise the unfiltering.
    /// </summary>
    public static byte[] PalettePng(byte[] indices, int width, int height, int bitDepth)
    {
        int rowBytes = (width * bitDepth + 7) / 8;
        var raw = new byte[height * (rowBytes + 1)];
        var prevRow = new byte[rowBytes];
        for (int y = 0; y < height; y++)
        {
            var row = new byte[rowBytes];
            for (int x = 0; x < width; x++)
            {
                int perByte = 8 / bitDepth, shift = 8 - bitDepth * (x % perByte + 1);
                row[x / perByte] |= (byte)(indices[y * width + x] << shift);
            }
            byte filter = (byte)(y % 2 == 1 ? 1 : 4);
            int o = y * (rowBytes + 1);
            raw[o] = filter;
            for (int x = 0; x < rowBytes; x++)
            {
                int a = x > 0 ? row[x - 1] : 0, b = y > 0 ? prevRow[x] : 0, c = x > 0 && y > 0 ? prevRow[x - 1] : 0;
                int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                int paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                raw[o + 1 + x] = (byte)(row[x] - (filter == 1 ? a : paeth));
            }
            prevRow = row;
        }

        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = (byte)bitDepth;
        ihdr[9] = 3;
        Chunk(png, "IHDR", ihdr);
        var palette = new byte[3 << bitDepth];
        for (int i = 0; i < palette.Length; i++) palette[i] = (byte)(i * 37);
        Chunk(png, "PLTE", palette);
        using (var zipped = new MemoryStream())
        {
            using (var z = new ZLibStream(zipped, CompressionLevel.Optimal, leaveOpen: true)) z.Write(raw);
            Chunk(png, "IDAT", zipped.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] body)
    {
        var head = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)body.Length);
        System.Text.Encoding.ASCII.GetBytes(type, head.AsSpan(4));
        s.Write(head);
        s.Write(body);
        var crcInput = head.AsSpan(4).ToArray().Concat(body).ToArray();
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(crcInput));
        s.Write(crc);
    }

    private static uint Crc32(byte[] data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>PNG bytes of a solid colour image.</summary>
    public static byte[] RgbPngBytes(int width, int height, byte r, byte g, byte b)
    {
        using var image = new Image<Rgb24>(width, height, new Rgb24(r, g, b));
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    /// <summary>PNG bytes of an 8-bit greyscale mask.</summary>
    public static byte[] GreyMaskBytes(byte[] indices, int width, int height)
    {
        using var image = Image.LoadPixelData<L8>(indices, width, height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms, new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit8 });
        return ms.ToArray();
    }

    /// <summary>A zip in memory from (name, bytes) entries; <paramref name="unixMode"/> sets the external attributes.</summary>
    public static MemoryStream Zip(params (string Name, byte[] Data, int? UnixMode)[] entries) => Zip(CompressionLevel.Fastest, entries);

    /// <summary>A zip in memory, compressed at <paramref name="level"/>.</summary>
    public static MemoryStream Zip(CompressionLevel level, params (string Name, byte[] Data, int? UnixMode)[] entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data, mode) in entries)
            {
                var entry = zip.CreateEntry(name, level);
                if (mode is { } m) entry.ExternalAttributes = m << 16;
                using var s = entry.Open();
                s.Write(data);
            }
        }
        ms.Position = 0;
        return ms;
    }

    /// <summary>
    /// A well-formed PNG (valid CRCs, one tiny IDAT) whose header declares <paramref name="width"/> ×
    /// <paramref name="height"/>: what a decoder would allocate for is decided by the header alone.
    /// </summary>
    public static byte[] DeclaredSizePng(int width, int height)
    {
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = 8; // 8-bit greyscale
        Chunk(png, "IHDR", ihdr);
        using (var zipped = new MemoryStream())
        {
            using (var z = new ZLibStream(zipped, CompressionLevel.Optimal, leaveOpen: true)) z.Write(new byte[64]);
            Chunk(png, "IDAT", zipped.ToArray());
        }
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>PNG bytes of random pixels (they do not compress).</summary>
    public static byte[] NoisePngBytes(int width, int height, int seed)
    {
        using var image = Noise(width, height, seed).ToImage();
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    /// <summary>Rewrites the uncompressed size an entry declares, in its local header and in the central directory (a lying archive).</summary>
    public static void PatchUncompressedSize(MemoryStream zip, string entryName, uint size)
    {
        var bytes = zip.GetBuffer();
        var name = System.Text.Encoding.UTF8.GetBytes(entryName);
        var patched = 0;
        for (int i = 0; i + 46 < zip.Length; i++)
        {
            var signature = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i));
            int nameAt, sizeAt;
            if (signature == 0x04034b50) (nameAt, sizeAt) = (i + 30, i + 22);      // local file header
            else if (signature == 0x02014b50) (nameAt, sizeAt) = (i + 46, i + 24); // central directory header
            else continue;
            if (nameAt + name.Length > zip.Length || !bytes.AsSpan(nameAt, name.Length).SequenceEqual(name)) continue;
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(sizeAt), size);
            patched++;
        }
        if (patched != 2) throw new InvalidOperationException($"patched {patched} headers of {entryName}");
        zip.Position = 0;
    }

    /// <summary>A smooth synthetic image: R follows x, G follows y, B their sum.</summary>
    public static RgbBuffer Gradient(int width, int height)
    {
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                px[i] = (byte)(255 * x / (width - 1));
                px[i + 1] = (byte)(255 * y / (height - 1));
                px[i + 2] = (byte)((px[i] + px[i + 1]) / 2);
            }
        return new RgbBuffer(px, width, height);
    }

    /// <summary>A deterministic pseudo-random image (the values do not repeat along rows).</summary>
    public static RgbBuffer Noise(int width, int height, int seed)
    {
        var px = new byte[width * height * 3];
        new Random(seed).NextBytes(px);
        return new RgbBuffer(px, width, height);
    }
}
