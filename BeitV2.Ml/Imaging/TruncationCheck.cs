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
    // Bytes after IEND are ignored, as decoders do.
    private static string? CheckPng(ReadOnlySpan<byte> data)
    {
        int i = 8;
        while (true)
        {
            if (data.Length - i < 8) return "the PNG data ends before its IEND chunk";
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            if (length > int.MaxValue) return "a PNG chunk declares an invalid length";
            bool isEnd = data.Slice(i + 4, 4).SequenceEqual("IEND"u8);
            if (data.Length - i - 12 < (long)length) return "the PNG data ends inside a chunk";
            if (isEnd) return null;
            i += 12 + (int)length;
        }
    }

    // JPEG: marker segments up to EOI (FF D9). After each SOS header comes entropy-coded data in
    // which FF is always followed by 00 (a stuffed byte) or D0-D7 (restart markers), so the next
    // real marker can be found without decoding. Marker bytes inside APPn segments (e.g. an EXIF
    // thumbnail with its own EOI) are skipped by the segment length and cannot end the walk early.
    private static string? CheckJpeg(ReadOnlySpan<byte> data)
    {
        const string truncated = "the JPEG data ends before its end-of-image marker";
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
            if (length < 2) return "a JPEG segment declares an invalid length";
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
