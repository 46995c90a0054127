using System.Buffers.Binary;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;

namespace BeitV2.Ml.Imaging;

/// <summary>
/// Detects PNG and JPEG files that stop before their end marker. ImageSharp 2.x decodes such files
/// without complaint, filling the missing part with black or grey, whereas PIL raises "image file
/// is truncated"; a half-uploaded photo should be refused, not classified. Only the container
/// structure is walked (chunk lengths, JPEG markers), so the cost is one pass over the bytes.
/// </summary>
internal static class TruncationCheck
{
    /// <summary>Returns a description of the problem, or null when the structure is complete.</summary>
    public static string? Find(ReadOnlySpan<byte> data, IImageFormat format) => format switch
    {
        PngFormat => CheckPng(data),
        JpegFormat => CheckJpeg(data),
        _ => null,
    };

    // PNG: signature, then chunks of length(4) type(4) data(length) crc(4) up to IEND.
    // Bytes after IEND are ignored, as decoders do. A complete chunk structure is not enough: the IDAT
    // data may inflate to fewer scanlines than IHDR declares (a 69-byte file "of" 6000×6000 pixels), which
    // ImageSharp would fill with black after allocating the whole image; so the zlib stream is inflated
    // into a small scratch buffer and its length compared with the declared one.
    private static string? CheckPng(ReadOnlySpan<byte> data)
    {
        int i = 8;
        var idat = new List<(int Offset, int Length)>();
        int ihdr = -1;
        while (true)
        {
            if (data.Length - i < 8) return "it stops before the end of the picture";
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            if (length > int.MaxValue) return "a part of it declares an impossible length";
            var type = data.Slice(i + 4, 4);
            if (data.Length - i - 12 < (long)length) return "it stops before the end of the picture";
            if (type.SequenceEqual("IEND"u8)) break;
            if (type.SequenceEqual("IHDR"u8) && length >= 13) ihdr = i + 8;
            else if (type.SequenceEqual("IDAT"u8)) idat.Add((i + 8, (int)length));
            i += 12 + (int)length;
        }
        if (ihdr < 0 || idat.Count == 0) return null;   // ImageSharp refuses these itself
        var expected = PngScanlineBytes(data.Slice(ihdr, 13));
        if (expected is null) return null;              // an unknown colour type or depth: the decoder refuses it
        return InflatedLength(data, idat, expected.Value) is var inflated && inflated < expected
            ? $"its pixel data ends early ({inflated} of the {expected} bytes its {BinaryPrimitives.ReadUInt32BigEndian(data[ihdr..])}x{BinaryPrimitives.ReadUInt32BigEndian(data[(ihdr + 4)..])} header declares)"
            : null;
    }

    /// <summary>The filtered scanline bytes IHDR declares (Adam7 passes included), or null for an invalid header.</summary>
    internal static long? PngScanlineBytes(ReadOnlySpan<byte> ihdr)
    {
        long width = BinaryPrimitives.ReadUInt32BigEndian(ihdr), height = BinaryPrimitives.ReadUInt32BigEndian(ihdr[4..]);
        int depth = ihdr[8], colour = ihdr[9], interlace = ihdr[12];
        int channels = colour switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        if (channels == 0 || depth is not (1 or 2 or 4 or 8 or 16) || width == 0 || height == 0) return null;
        long bitsPerPixel = (long)channels * depth;
        long Rows(long w, long h) => w == 0 || h == 0 ? 0 : h * (1 + (w * bitsPerPixel + 7) / 8);
        if (interlace == 0) return Rows(width, height);
        // Adam7: pass p covers columns start_x + k·step_x and rows start_y + k·step_y.
        ReadOnlySpan<int> sx = [0, 4, 0, 2, 0, 1, 0], sy = [0, 0, 4, 0, 2, 0, 1], dx = [8, 8, 4, 4, 2, 2, 1], dy = [8, 8, 8, 4, 4, 2, 2];
        long total = 0;
        for (int p = 0; p < 7; p++)
            total += Rows((width - sx[p] + dx[p] - 1) / dx[p], (height - sy[p] + dy[p] - 1) / dy[p]);
        return total;
    }

    // Inflates the concatenated IDAT payloads into a scratch buffer, stopping at `needed` bytes. A stream
    // that is not valid zlib counts as what it produced before the error.
    private static long InflatedLength(ReadOnlySpan<byte> data, List<(int Offset, int Length)> idat, long needed)
    {
        // The chunks are contiguous in one array only when the span is; copy just the compressed bytes (small).
        var compressed = new byte[idat.Sum(c => (long)c.Length)];
        int at = 0;
        foreach (var (offset, length) in idat) { data.Slice(offset, length).CopyTo(compressed.AsSpan(at)); at += length; }
        long total = 0;
        var scratch = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            using var z = new System.IO.Compression.ZLibStream(new MemoryStream(compressed, writable: false), System.IO.Compression.CompressionMode.Decompress);
            int n;
            while (total < needed && (n = z.Read(scratch, 0, (int)Math.Min(scratch.Length, needed - total))) > 0) total += n;
        }
        catch (InvalidDataException) { }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); }
        return total;
    }

    // JPEG: marker segments up to EOI (FF D9). After each SOS header comes entropy-coded data in
    // which FF is always followed by 00 (a stuffed byte) or D0-D7 (restart markers), so the next
    // real marker can be found without decoding. Marker bytes inside APPn segments (e.g. an EXIF
    // thumbnail with its own EOI) are skipped by the segment length and cannot end the walk early.
    private static string? CheckJpeg(ReadOnlySpan<byte> data)
    {
        const string truncated = "it stops before the end of the picture";
        int i = 2; // after SOI
        while (true)
        {
            // Next marker: skip any stray bytes (libjpeg tolerates them with a warning) and fill bytes.
            int ff = data[i..].IndexOf((byte)0xFF);
            if (ff < 0) return truncated;
            i += ff;
            while (i < data.Length && data[i] == 0xFF) i++;
            if (i >= data.Length) return truncated;
            byte marker = data[i++];

            if (marker == 0xD9) return null;                                // EOI
            if (marker is 0x00 or 0x01 or 0xD8 or (>= 0xD0 and <= 0xD7)) continue; // no length field

            if (data.Length - i < 2) return truncated;
            int length = BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            if (length < 2) return "a part of it declares an impossible length";
            if (data.Length - i < length) return truncated;
            i += length;

            if (marker != 0xDA) continue;                                   // not SOS
            while (true)                                                    // entropy-coded data
            {
                ff = data[i..].IndexOf((byte)0xFF);
                if (ff < 0 || i + ff + 1 >= data.Length) return truncated;
                i += ff;
                byte next = data[i + 1];
                if (next is 0x00 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; }
                if (next == 0xFF) { i++; continue; }
                break;                                                      // a real marker at data[i]
            }
        }
    }
}
