using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace BeitV2.Web.Tests.Api;

/// <summary>Request builders and response assertions shared by the API tests.</summary>
internal static class Http
{
    /// <summary>A multipart body with one part named 'image' per image (content type sniffed from the bytes).</summary>
    public static MultipartFormDataContent Images(params byte[][] images)
    {
        var form = new MultipartFormDataContent();
        for (var i = 0; i < images.Length; i++) form.Add(Part(images[i], TestImages.ContentType(images[i])), "image", $"image{i}");
        return form;
    }

    public static ByteArrayContent Part(byte[] bytes, string? contentType)
    {
        var part = new ByteArrayContent(bytes);
        if (contentType is not null) part.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return part;
    }

    /// <summary>One raw body with the given content type.</summary>
    public static ByteArrayContent Raw(byte[] bytes, string contentType) => Part(bytes, contentType);

    /// <summary>A body of unknown length (sent chunked): the server must enforce limits while reading.</summary>
    public static StreamContent Streamed(byte[] bytes, string contentType)
    {
        var content = new StreamContent(new UnseekableStream(new MemoryStream(bytes)));
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return content;
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: " +
                                                     $"{(int)response.StatusCode}, expected {(int)expected}: {body}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString());
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.Clone();
    }

    public static async Task<JsonElement> JsonAsync(this Task<HttpResponseMessage> response, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var r = await response;
        return await r.JsonAsync(expected);
    }

    /// <summary>Asserts an RFC 7807 answer with the given status and a non-empty detail; returns the detail.</summary>
    public static async Task<string> ProblemAsync(this HttpResponseMessage response, int status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri}: " +
                                                        $"{(int)response.StatusCode}, expected {status}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(body);
        Assert.Equal(status, doc.RootElement.GetProperty("status").GetInt32());
        Assert.True(doc.RootElement.TryGetProperty("title", out var title) && title.GetString() is { Length: > 0 }, "no title: " + body);
        var detail = doc.RootElement.TryGetProperty("detail", out var d) ? d.GetString() : null;
        Assert.False(string.IsNullOrWhiteSpace(detail), "no detail: " + body);
        return detail!;
    }

    public static async Task<string> ProblemAsync(this Task<HttpResponseMessage> response, int status)
    {
        using var r = await response;
        return await r.ProblemAsync(status);
    }

    public static async Task<byte[]> PngAsync(this Task<HttpResponseMessage> response)
    {
        using var r = await response;
        var bytes = await r.Content.ReadAsByteArrayAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode}: {System.Text.Encoding.UTF8.GetString(bytes)}");
        Assert.Equal("image/png", r.Content.Headers.ContentType?.MediaType);
        return bytes;
    }

    public static float[] Floats(this JsonElement array) => array.EnumerateArray().Select(e => e.GetSingle()).ToArray();

    public static string Str(this JsonElement e, string property) => e.GetProperty(property).GetString()!;

    public static int Int(this JsonElement e, string property) => e.GetProperty(property).GetInt32();

    public static JsonElement[] Items(this JsonElement e, string property) => e.GetProperty(property).EnumerateArray().ToArray();

    private sealed class UnseekableStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
