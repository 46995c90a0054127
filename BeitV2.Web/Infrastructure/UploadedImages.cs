using BeitV2.Ml.Imaging;
using BeitV2.Web.Configuration;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Infrastructure;

/// <summary>One decoded upload: its position in the request and the RGB image.</summary>
public sealed record UploadedImage(int Index, string? FileName, Image<Rgb24> Image) : IDisposable
{
    public void Dispose() => Image.Dispose();
}

/// <summary>
/// Reads the images of an inference request: <c>multipart/form-data</c> parts named <c>image</c>, or
/// one raw body with an <c>image/*</c> (or octet-stream) content type. Enforces the byte, count and
/// pixel limits, and decodes with the hardened <see cref="ImageDecoder"/>; every failure is a typed
/// client error and nothing is kept.
/// </summary>
public sealed class UploadedImageReader(IOptions<LimitsOptions> limits)
{
    public const string PartName = "image";

    // One decoder for the process: building its ImageSharp Configuration (eight format modules) cost
    // about 7 ms per request, more than decoding a 640×480 JPEG. Decoding with it is thread-safe.
    private readonly ImageDecoder decoder = new(new ImageLimits(limits.Value.MaxImagePixels, limits.Value.MaxUploadBytes));

    public async Task<List<UploadedImage>> ReadAsync(HttpRequest request, CancellationToken ct)
    {
        var l = limits.Value;
        if (request.ContentLength is { } length && length > l.MaxUploadBytes)
            throw ApiProblemException.TooLarge($"The request body is {length} bytes; the limit is {l.MaxUploadBytes} bytes (Limits:MaxUploadBytes).");
        // Bound the body for this route (the server-wide limit is the larger import limit).
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
            bodySize.MaxRequestBodySize = l.MaxUploadBytes;
        var images = new List<UploadedImage>();
        try
        {
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
                    throw ApiProblemException.TooLarge(
                        $"The form has too many parts; at most {l.MaxImagesPerRequest} images are accepted per request (Limits:MaxImagesPerRequest).");
                }
                var files = form.Files.GetFiles(PartName);
                if (files.Count == 0)
                    throw ApiProblemException.BadRequest(form.Files.Count == 0
                        ? $"The multipart body has no file parts; send one or more parts named '{PartName}'."
                        : $"No part is named '{PartName}' (got: {string.Join(", ", form.Files.Select(f => f.Name).Distinct())}).");
                CheckCount(files.Count, l);
                var total = files.Sum(f => f.Length);
                if (total > l.MaxUploadBytes)
                    throw ApiProblemException.TooLarge($"The images total {total} bytes; the limit is {l.MaxUploadBytes} bytes.");
                for (var i = 0; i < files.Count; i++)
                {
                    var f = files[i];
                    if (f.ContentType is { Length: > 0 } ct0 && !IsAcceptableType(ct0))
                        throw ApiProblemException.UnsupportedMediaType($"Part {i} ('{f.FileName}') has content type '{ct0}', not an image.");
                    await using var s = f.OpenReadStream();
                    var bytes = await ReadAllAsync(s, l.MaxUploadBytes, ct);
                    images.Add(new UploadedImage(i, f.FileName, DecodeAt(decoder, bytes, i)));
                }
            }
            else
            {
                var type = request.ContentType;
                if (string.IsNullOrEmpty(type) && request.ContentLength is null or 0)
                    throw ApiProblemException.BadRequest($"The request has no body: send multipart/form-data with parts named '{PartName}', or a raw image body.");
                if (!string.IsNullOrEmpty(type) && !IsAcceptableType(type))
                    throw ApiProblemException.UnsupportedMediaType($"Content type '{type}' is not accepted: use multipart/form-data or image/*.");
                var bytes = await ReadAllAsync(request.Body, l.MaxUploadBytes, ct, request.ContentLength);
                if (bytes.Length == 0) throw ApiProblemException.BadRequest("The request body is empty.");
                images.Add(new UploadedImage(0, null, DecodeAt(decoder, bytes, 0)));
            }
            return images;
        }
        catch
        {
            foreach (var image in images) image.Dispose();
            throw;
        }
    }

    private static void CheckCount(int count, LimitsOptions l)
    {
        if (count > l.MaxImagesPerRequest)
            throw ApiProblemException.TooLarge($"{count} images in one request; the limit is {l.MaxImagesPerRequest} (Limits:MaxImagesPerRequest).");
    }

    private static Image<Rgb24> DecodeAt(ImageDecoder decoder, byte[] bytes, int index)
    {
        try
        {
            return decoder.Decode(bytes);
        }
        catch (ImageDecodeException e)
        {
            // Keep the typed error (its status mapping) but say which image failed.
            throw new ImageDecodeException(e.Error, $"Image {index}: {e.Message}", e);
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
                throw ApiProblemException.TooLarge($"The image data exceeds {limit} bytes (Limits:MaxUploadBytes).");
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }
}
