using BeitV2.Ml.Models;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// <c>Ml:InferencePrecision=bf16</c> on the CPU: the same model answers classify and embeddings close to
/// float32 (bfloat16 tolerance), and <c>/api/v1/info</c> says so. Not a parity test (those stay float32).
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class InferencePrecisionTests
{
    private sealed record Answers(float[][] Probabilities, float[][] Embeddings, string Precision);

    private static async Task<Answers> Ask(string precision, byte[][] images)
    {
        using var host = new ApiHost(new Dictionary<string, string?> { ["Ml:InferencePrecision"] = precision });
        manual_seed(77);
        host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 5)), "same weights");
        using var client = host.CreateClient();
        var classify = await client.PostAsync("/api/v1/classify?topK=5", Http.Images(images)).JsonAsync();
        var probabilities = classify.Items("images").Select(i => i.Items("predictions")
            .OrderBy(p => p.Int("classIndex")).Select(p => p.GetProperty("probability").GetSingle()).ToArray()).ToArray();
        var embeddings = (await client.PostAsync("/api/v1/embeddings?pooling=mean", Http.Images(images)).JsonAsync())
            .Items("data").Select(d => d.GetProperty("embedding").Floats()).ToArray();
        var info = await client.GetAsync("/api/v1/info").JsonAsync();
        host.AssertNoServerErrors();
        return new Answers(probabilities, embeddings, info.GetProperty("compute").Str("inferencePrecision"));
    }

    [Fact]
    public async Task Bf16_AnswersCloseToFp32()
    {
        var images = Enumerable.Range(0, 3).Select(i => TestImages.Png(48, 40, seed: 10 + i)).ToArray();
        var fp32 = await Ask("fp32", images);
        var bf16 = await Ask("bf16", images);
        Assert.Equal("fp32", fp32.Precision);
        Assert.Equal("bf16", bf16.Precision);
        for (var i = 0; i < images.Length; i++)
        {
            for (var k = 0; k < 5; k++)
                Assert.True(Math.Abs(fp32.Probabilities[i][k] - bf16.Probabilities[i][k]) <= 0.02,
                    $"image {i} class {k}: fp32 {fp32.Probabilities[i][k]:F4}, bf16 {bf16.Probabilities[i][k]:F4}");
            var a = fp32.Embeddings[i];
            var b = bf16.Embeddings[i];
            double dot = 0, na = 0, nb = 0;
            for (var j = 0; j < a.Length; j++) { dot += a[j] * b[j]; na += a[j] * a[j]; nb += b[j] * b[j]; }
            Assert.True(dot / Math.Sqrt(na * nb) > 0.999, $"image {i}: embedding cosine {dot / Math.Sqrt(na * nb):F5}");
        }
        Assert.Contains(Enumerable.Range(0, images.Length), i => !fp32.Embeddings[i].SequenceEqual(bf16.Embeddings[i])); // bf16 really ran
    }
}
