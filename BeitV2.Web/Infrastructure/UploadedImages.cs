using BeitV2.Ml.Imaging;
using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Infrastructure;

/// <summary>One upload as received: its position in the request, its bytes and what its header declares (nothing decoded yet).</summary>
/// <param name="Count">How many images the request carried (errors say "Image 2 of 3" only when there are several).</param>
public sealed record EncodedImage(int Index, string? FileName, byte[] Bytes, ImageHeader Header, int Count = 1);

/// <summary>
/// One upload after inference: its position and size, and the decoded RGB image only when the response is
/// drawn over it (format=png/overlay); otherwise the full-size pixels were released as soon as the model's
/// input was made from them.
/// </summary>
public sealed record UploadedImage(int Index, string? FileName, int Width, int Height, Image<Rgb24>? Image, IDisposable? DecodeLease = null) : IDisposable
{
    public void Dispose()
    {
        Image?.Dispose();
        DecodeLease?.Dispose();
    }
}

/// <summary>
/// Reads the images of an inference request: <c>multipart/form-data</c> parts named <c>image</c>, or
/// one raw body with an <c>image/*</c> (or octet-stream) content type. Enforces the byte, count,
/// pixel, aspect-ratio and per-request pixel limits from the headers alone; decoding (<see cref="Decode"/>)
/// is left to the caller, one image at a time, under the decode budget. Every failure is a typed client error.
/// </summary>
public sealed class UploadedImageReader(IOptions<LimitsOptions> limits)
{
    public const string PartName = "image";

    // One decoder for the process: building its ImageSharp Configuration (eight format modules) cost
    // about 7 ms per request, more than decoding a 640×480 JPEG. Decoding with it is thread-safe.
    private readonly ImageDecoder decoder = new(new ImageLimits(limits.Value.MaxImagePixels, limits.Value.MaxUploadBytes, limits.Value.MaxAspectRatio));

    /// <summary>Decodes one upload (its header was checked by <see cref="ReadAsync"/>); the caller owns the image.</summary>
    public Image<Rgb24> Decode(EncodedImage upload) => DecodeAt(decoder, upload.Bytes, upload.Index, upload.Count, upload.FileName);

    public async Task<List<EncodedImage>> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        var l = limits.Value;
        if (request.ContentLength is { } length && length > l.MaxUploadBytes)
            throw new TooLargeException($"The request body is {length} bytes; the limit is {l.MaxUploadBytes} bytes (Limits:MaxUploadBytes).");
        // Bound the body for this route (the server-wide limit is the larger import limit).
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
            bodySize.MaxRequestBodySize = l.MaxUploadBytes;
        var images = new List<EncodedImage>();
        if (request.HasFormContentType)
        {
            IFormCollection form;
            try
            {
                form = await MultipartForms.ReadAsync(request, new FormOptions
                {
                    MultipartBodyLengthLimit = l.MaxUploadBytes,
                    // Files count towards this limit too: room for every allowed image plus some fields.
                    ValueCountLimit = (int)Math.Min(int.MaxValue, (long)l.MaxImagesPerRequest + 64),
                }, ct);
            }
            catch (InvalidDataException e) when (e.Message.Contains("count limit", StringComparison.OrdinalIgnoreCase))
            {
                throw new TooLargeException(
                    $"The form has too many parts; at most {l.MaxImagesPerRequest} images are accepted per request (Limits:MaxImagesPerRequest).");
            }
            var files = form.Files.GetFiles(PartName);
            if (files.Count == 0)
                throw new InvalidRequestException(form.Files.Count == 0
                    ? $"The multipart body has no file parts; send one or more parts named '{PartName}'."
                    : $"No part is named '{PartName}' (got: {string.Join(", ", form.Files.Select(f => f.Name).Distinct())}).");
            CheckCount(files.Count, l);
            var total = files.Sum(f => f.Length);
            if (total > l.MaxUploadBytes)
                throw new TooLargeException($"The images total {total} bytes; the limit is {l.MaxUploadBytes} bytes.");
            for (var i = 0; i < files.Count; i++)
            {
                var f = files[i];
                if (f.ContentType is { Length: > 0 } ct0 && !IsAcceptableType(ct0))
                    throw new UnsupportedInputException(UploadLabel.Prefix($"The part has content type '{ct0}', not an image.", i, files.Count, f.FileName));
                await using var s = f.OpenReadStream();
                var bytes = await ReadAllAsync(s, l.MaxUploadBytes, ct);
                images.Add(new EncodedImage(i, f.FileName, bytes, HeaderAt(decoder, bytes, i, files.Count, f.FileName), files.Count));
            }
        }
        else
        {
            var type = request.ContentType;
            if (string.IsNullOrEmpty(type) && request.ContentLength is null or 0)
                throw new InvalidRequestException($"The request has no body: send multipart/form-data with parts named '{PartName}', or a raw image body.");
            if (!string.IsNullOrEmpty(type) && !IsAcceptableType(type))
                throw new UnsupportedInputException($"Content type '{type}' is not accepted: use multipart/form-data or image/*.");
            var bytes = await ReadAllAsync(request.Body, l.MaxUploadBytes, ct, request.ContentLength);
            if (bytes.Length == 0) throw new InvalidRequestException("The request body is empty.");
            images.Add(new EncodedImage(0, null, bytes, HeaderAt(decoder, bytes, 0, 1, null)));
        }
        // The whole request's pixels, from the headers: refused before a single one is decoded.
        var pixels = images.Sum(i => i.Header.Pixels);
        if (pixels > l.MaxPixelsPerRequest)
            throw new TooLargeException(
                $"The {images.Count} image(s) of this request declare {pixels} pixels in all; at most {l.MaxPixelsPerRequest} are accepted " +
                "per request (Limits:MaxPixelsPerRequest). Send fewer or smaller images per request.");
        return images;
    }

    private static void CheckCount(int count, LimitsOptions l)
    {
        if (count > l.MaxImagesPerRequest)
            throw new TooLargeException($"{count} images in one request; the limit is {l.MaxImagesPerRequest} (Limits:MaxImagesPerRequest).");
    }

    private static ImageHeader HeaderAt(ImageDecoder decoder, byte[] bytes, int index, int count, string? fileName)
    {
        try
        {
            return decoder.ReadHeader(bytes);
        }
        catch (ImageDecodeException e)
        {
            throw new ImageDecodeException(e.Error, UploadLabel.Prefix(e.Message, index, count, fileName), e);
        }
    }

    private static Image<Rgb24> DecodeAt(ImageDecoder decoder, byte[] bytes, int index, int count, string? fileName)
    {
        try
        {
            return decoder.Decode(bytes);
        }
        catch (ImageDecodeException e)
        {
            // Keep the typed error (its status mapping) but say which image failed.
            throw new ImageDecodeException(e.Error, UploadLabel.Prefix(e.Message, index, count, fileName), e);
        }
    }

    private static bool IsAcceptableType(string contentType) =>
        contentType.StartsWith("image/", StringComparison.OrdinalIgnoreCase)
        || contentType.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase);

    private static async Task<byte[]> ReadAllAsync(Stream stream, long limit, CancellationToken ct, long? expected = null)
    {
        if (expected is > 0 && expected <= limit)
        {
            // The usual raw upload: straight into an array of the announced size (Kestrel holds the body to its
            // Content-Length: a longer one is cut off, a shorter one fails the read).
            var exact = new byte[expected.Value];
            var filled = 0;
            int n;
            while (filled < exact.Length && (n = await stream.ReadAsync(exact.AsMemory(filled), ct)) > 0) filled += n;
            return filled == exact.Length ? exact : exact[..filled];
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await stream.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit)
                throw new TooLargeException($"The image data exceeds {limit} bytes (Limits:MaxUploadBytes).");
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }
}
