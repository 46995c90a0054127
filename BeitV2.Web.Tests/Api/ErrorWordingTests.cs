using System.Net.Http.Headers;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// An unusable upload is explained in plain words: what is wrong with the file, which file (by the name the
/// request gave it), its position counted from 1 only when there are several, and never a .NET type name.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ErrorWordingTests(SeededApi api)
{
    private static byte[] Truncated => TestImages.Fixture("truncated.jpg");

    [Fact]
    public async Task OneNamedTruncatedJpeg_IsNamedAndExplained()
    {
        var form = new MultipartFormDataContent { { Http.Part(Truncated, "image/jpeg"), "image", "holiday.jpg" } };
        var detail = await api.Client.PostAsync("/api/v1/classify", form).ProblemAsync(400);
        Assert.StartsWith("holiday.jpg: the JPEG file is truncated", detail);
        AssertPlain(detail);
        Assert.DoesNotContain("Image 1", detail);
    }

    [Fact]
    public async Task OneUnnamedTruncatedJpeg_IsExplainedWithoutAName()
    {
        var detail = await api.Client.PostAsync("/api/v1/classify", Http.Raw(Truncated, "image/jpeg")).ProblemAsync(400);
        Assert.StartsWith("The JPEG file is truncated", detail);
        AssertPlain(detail);
    }

    [Fact]
    public async Task TheSecondOfThreeImages_IsCountedFromOne()
    {
        var form = new MultipartFormDataContent
        {
            { Http.Part(SeededApi.SmallImage, "image/png"), "image", "first.png" },
            { Http.Part(Truncated, "image/jpeg"), "image", "cut.jpg" },
            { Http.Part(SeededApi.SmallImage, "image/png"), "image", "third.png" },
        };
        var detail = await api.Client.PostAsync("/api/v1/embeddings", form).ProblemAsync(400);
        Assert.StartsWith("Image 2 of 3 (cut.jpg): the JPEG file is truncated", detail);
        AssertPlain(detail);
    }

    [Fact]
    public async Task AJpegCutInsidePixelData_SaysTruncated_AndAPngWithABadChecksum_SaysDamaged()
    {
        var rocket = TestImages.Rocket;
        var cut = await api.Client.PostAsync("/api/v1/classify", Http.Raw(rocket[..(rocket.Length / 2)], "image/jpeg")).ProblemAsync(400);
        Assert.StartsWith("The JPEG file is truncated", cut);
        AssertPlain(cut);

        var png = SeededApi.SmallImage.ToArray();
        png[8 + 8 + 5] ^= 0x5A;   // a byte of the IHDR chunk's data: its CRC no longer matches
        var form = new MultipartFormDataContent { { Http.Part(png, "image/png"), "image", "scan.png" } };
        var damaged = await api.Client.PostAsync("/api/v1/classify", form).ProblemAsync(400);
        Assert.StartsWith("scan.png: the PNG file is damaged", damaged);
        AssertPlain(damaged);
        await api.AssertStillServingAsync();
    }

    private static void AssertPlain(string detail)
    {
        Assert.DoesNotContain("Exception", detail);
        Assert.DoesNotContain("marker", detail, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Image 0", detail);
    }
}
