using System.Text;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// Every class of bad input gets the contract's status as a ProblemDetails with a detail, and the
/// service keeps serving afterwards with nothing left behind.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class BadInputTests(SeededApi api)
{
    public static TheoryData<string, int, string?> Cases => new()
    {
        { "empty body", 400, null },
        { "empty raw image body", 400, null },
        { "empty image part", 400, null },
        { "text sent as image/png", 415, null },
        { "text/plain body", 415, null },
        { "application/json body", 415, null },
        { "text part named image", 415, "Image 2 of 2 (image.bin)" },
        { "text/plain part named image", 415, null },
        { "truncated jpeg fixture", 400, null },
        { "rocket.jpg cut in half", 400, null },
        { "png whose pixel data stops early", 400, "truncated" },
        { "png 1x200 (thinner than 1:100)", 422, "1:100" },
        { "png claiming 100000x100000", 422, "image0: the PNG image" },
        { "bmp claiming 30000x30000", 422, null },
        { "png 0x10", 422, null },
        { "bmp 10x0", 422, null },
        { "too many images", 413, "MaxImagesPerRequest" },
        { "far too many images", 413, "MaxImagesPerRequest" },
        { "png bomb: 2500x2000 pixels in a few kB", 422, "pixels" },
        { "raw body over MaxUploadBytes", 413, "MaxUploadBytes" },
        { "multipart body over MaxUploadBytes", 413, null },
        { "streamed body over MaxUploadBytes", 413, null },
        { "multipart without image part", 400, "image" },
        { "multipart with only a text field", 400, null },
        { "unknown model", 404, "no-such-model" },
        { "model id with path characters", 404, null },
        { "classify with a tokenizer", 400, "tokenizer" },
        { "tokens with a classifier", 400, null },
        { "segment with a backbone", 400, null },
        { "embeddings with a segmenter", 400, null },
        { "classify with a backbone", 400, null },
        { "topK=0", 400, "topK" },
        { "topK=-3", 400, null },
        { "topK=abc", 400, "topK" },
        { "pooling=foo", 400, "pooling" },
        { "normalize=maybe", 400, "normalize" },
        { "tokens format=gif", 400, "format" },
        { "segment format=gif", 400, "format" },
        { "tokens format=png with two images", 400, null },
        { "segment format=overlay with two images", 400, null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task IsRefusedWithProblemDetails_AndTheServiceKeepsServing(string name, int status, string? mentions)
    {
        using var request = Build(name);
        using var response = await api.Client.SendAsync(request);
        var detail = await response.ProblemAsync(status);
        Assert.DoesNotContain("unexpected error", detail, StringComparison.OrdinalIgnoreCase);
        if (mentions is not null) Assert.Contains(mentions, detail);
        await api.AssertStillServingAsync();
    }

    private HttpRequestMessage Build(string name)
    {
        var small = SeededApi.SmallImage;
        var text = Encoding.UTF8.GetBytes("this is not an image, just some text");
        return name switch
        {
            "empty body" => Post("classify", null),
            "empty raw image body" => Post("classify", Http.Raw([], "image/png")),
            "empty image part" => Post("classify", Form(("image", [], "image/png"))),
            "text sent as image/png" => Post("classify", Http.Raw(text, "image/png")),
            "text/plain body" => Post("classify", Http.Raw(text, "text/plain")),
            "application/json body" => Post("embeddings", Http.Raw("""{"image":"x"}"""u8.ToArray(), "application/json")),
            "text part named image" => Post("tokens", Form(("image", small, "image/png"), ("image", text, "image/jpeg"))),
            "text/plain part named image" => Post("tokens", Form(("image", text, "text/plain"))),
            "truncated jpeg fixture" => Post("classify", Http.Images(TestImages.Fixture("truncated.jpg"))),
            "rocket.jpg cut in half" => Post("segment", Http.Raw(TestImages.Rocket[..(TestImages.Rocket.Length / 2)], "image/jpeg")),
            "png whose pixel data stops early" => Post("segment", Http.Images(CraftedImages.PngWithShortIdat(1000, 1000))),
            "png 1x200 (thinner than 1:100)" => Post("tokens", Http.Images(CraftedImages.PngHeader(1, 200))),
            "png claiming 100000x100000" => Post("classify", Http.Images(CraftedImages.PngHeader(100_000, 100_000))),
            "bmp claiming 30000x30000" => Post("embeddings", Http.Raw(CraftedImages.BmpHeader(30_000, 30_000), "image/bmp")),
            "png 0x10" => Post("classify", Http.Images(CraftedImages.PngHeader(0, 10))),
            "bmp 10x0" => Post("tokens", Http.Raw(CraftedImages.BmpHeader(10, 0), "image/bmp")),
            "too many images" => Post("classify", Http.Images(Enumerable.Repeat(small, SeededApi.MaxImagesPerRequest + 1).ToArray())),
            "far too many images" => Post("classify", Http.Images(Enumerable.Repeat(CraftedImages.PngHeader(1, 1), 100).ToArray())),
            "png bomb: 2500x2000 pixels in a few kB" => Post("classify", Http.Images(PngBomb.Value)),
            "raw body over MaxUploadBytes" => Post("classify", Http.Raw(Oversized(), "image/png")),
            "multipart body over MaxUploadBytes" => Post("classify", Http.Images(small, Oversized())),
            "streamed body over MaxUploadBytes" => Post("classify", Http.Streamed(Oversized(), "image/png")),
            "multipart without image part" => Post("classify", Form(("picture", small, "image/png"))),
            "multipart with only a text field" => Post("classify", TextField()),
            "unknown model" => Post("classify?model=no-such-model", Http.Images(small)),
            "model id with path characters" => Post("classify?model=..%2Fmodels", Http.Images(small)),
            "classify with a tokenizer" => Post($"classify?model={api.Tokenizer.Id}", Http.Images(small)),
            "tokens with a classifier" => Post($"tokens?model={api.Classifier.Id}", Http.Images(small)),
            "segment with a backbone" => Post($"segment?model={api.Backbone.Id}", Http.Images(small)),
            "embeddings with a segmenter" => Post($"embeddings?model={api.Segmenter.Id}", Http.Images(small)),
            "classify with a backbone" => Post($"classify?model={api.Backbone.Id}", Http.Images(small)),
            "topK=0" => Post("classify?topK=0", Http.Images(small)),
            "topK=-3" => Post("classify?topK=-3", Http.Images(small)),
            "topK=abc" => Post("classify?topK=abc", Http.Images(small)),
            "pooling=foo" => Post("embeddings?pooling=foo", Http.Images(small)),
            "normalize=maybe" => Post("embeddings?normalize=maybe", Http.Images(small)),
            "tokens format=gif" => Post("tokens?format=gif", Http.Images(small)),
            "segment format=gif" => Post("segment?format=gif", Http.Images(small)),
            "tokens format=png with two images" => Post("tokens?format=png", Http.Images(small, small)),
            "segment format=overlay with two images" => Post("segment?format=overlay", Http.Images(small, small)),
            _ => throw new ArgumentException(name),
        };
    }

    private static HttpRequestMessage Post(string route, HttpContent? content) => new(HttpMethod.Post, "/api/v1/" + route) { Content = content };

    private static MultipartFormDataContent Form(params (string Name, byte[] Bytes, string ContentType)[] parts)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, bytes, type) in parts) form.Add(Http.Part(bytes, type), name, name + ".bin");
        return form;
    }

    private static MultipartFormDataContent TextField()
    {
        var form = new MultipartFormDataContent();
        form.Add(new StringContent("hello"), "image");
        return form;
    }

    /// <summary>A real, decodable PNG of 5 megapixels (over the 4 MP limit) that compresses to a few kilobytes.</summary>
    private static readonly Lazy<byte[]> PngBomb = new(() =>
    {
        using var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.L8>(2500, 2000);
        using var ms = new MemoryStream();
        SixLabors.ImageSharp.ImageExtensions.SaveAsPng(image, ms);
        Assert.True(ms.Length < 50_000, $"{ms.Length} bytes");
        return ms.ToArray();
    });

    /// <summary>A valid PNG header followed by padding: larger than the upload limit.</summary>
    private static byte[] Oversized()
    {
        var bytes = new byte[SeededApi.MaxUploadBytes + 100_000];
        CraftedImages.PngHeader(64, 64).CopyTo(bytes, 0);
        return bytes;
    }
}
