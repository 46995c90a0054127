using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// A multipart body the form reader cannot parse is the client's fault: every upload route answers
/// 400 problem+json in words (no exception type names, no stack trace), and keeps serving.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class MalformedMultipartTests(SeededApi api)
{
    public static readonly string[] Routes =
        ["tokens", "embeddings", "classify", "segment", "datasets", "models/import"];

    public static readonly string[] Bodies =
        ["boundary mismatch", "no closing boundary", "garbage", "no boundary parameter", "header section never ends"];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var route in Routes)
            foreach (var body in Bodies)
                data.Add(route, body);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task MalformedBody_Is400ProblemDetails_AndTheServiceKeepsServing(string route, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/" + route) { Content = Build(body) };
        using var response = await api.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var detail = await response.ProblemAsync(400);
        Assert.Contains("multipart", detail, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotMatch(new Regex(@"\b(System|Microsoft|TorchSharp|BeitV2)\.[A-Za-z.]+Exception\b"), text);
        Assert.DoesNotContain("   at ", text);
        await api.AssertStillServingAsync();
    }

    private static HttpContent Build(string kind)
    {
        var image = SeededApi.SmallImage;
        var (boundary, bytes) = kind switch
        {
            // The header announces one boundary; the body is delimited by another.
            "boundary mismatch" => ("AAAA", Part("BBBB", image, close: true)),
            // A well-formed part, then the body ends without the closing --boundary--.
            "no closing boundary" => ("AAAA", Part("AAAA", image, close: false)),
            "garbage" => ("AAAA", Garbage()),
            "no boundary parameter" => ((string?)null, Part("AAAA", image, close: true)),
            // A part whose header block has no blank line before the body ends.
            "header section never ends" => ("AAAA", Encoding.ASCII.GetBytes("--AAAA\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png")),
            _ => throw new ArgumentException(kind),
        };
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(boundary is null ? "multipart/form-data" : $"multipart/form-data; boundary={boundary}");
        return content;
    }

    private static byte[] Part(string boundary, byte[] data, bool close)
    {
        using var ms = new MemoryStream();
        void Write(string s) => ms.Write(Encoding.ASCII.GetBytes(s));
        Write($"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n");
        ms.Write(data);
        Write($"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\nContent-Type: application/zip\r\n\r\n");
        ms.Write(data);
        if (close) Write($"\r\n--{boundary}--\r\n");
        return ms.ToArray();
    }

    private static byte[] Garbage()
    {
        var bytes = new byte[4096];
        new Random(15).NextBytes(bytes);
        return bytes;
    }
}
