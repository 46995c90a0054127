using System.Text.Json;
using BeitV2.Web.Errors;
using BeitV2.Web.Jobs;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The segmentation recipe's config keys: parsed, defaulted to today's recipe, and refused out of range with the key named.</summary>
public sealed class JobSettingsTests
{
    private static JobSettings Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return JobSettings.Parse(doc.RootElement.Clone());
    }

    [Fact]
    public void SegmentationKeys_DefaultToTheReferenceRecipe()
    {
        var s = Parse("{}");
        Assert.Equal((0.5, 2.0), s.ScaleRange);
        Assert.Null(s.BackgroundWeight);
        Assert.Null(s.ClassWeights);
        Assert.False(s.FreshScenes);
        Assert.Null(s.OutputStride);
        Assert.Null(s.LossWeights(11));
        foreach (var key in new[] { "scaleRange", "backgroundWeight", "classWeights", "freshScenes", "outputStride" })
            Assert.Contains(key, JobSettings.Keys);
    }

    [Fact]
    public void SegmentationKeys_AreParsed()
    {
        var s = Parse("""{"scaleRange": [1, 1], "backgroundWeight": 0.25, "freshScenes": true, "maxTrainImages": 6000, "outputStride": 2}""");
        Assert.Equal((1.0, 1.0), s.ScaleRange);
        Assert.Equal(0.25, s.BackgroundWeight);
        Assert.True(s.FreshScenes);
        Assert.Equal(2, s.OutputStride);
        Assert.Equal(new[] { 0.25, 1, 1, 1 }, s.LossWeights(4));

        var w = Parse("""{"classWeights": [0.5, 1, 2.5], "scaleRange": [0.25, 4], "outputStride": 4, "freshScenes": false}""");
        Assert.Equal(new[] { 0.5, 1, 2.5 }, w.ClassWeights);
        Assert.Equal(new[] { 0.5, 1, 2.5 }, w.LossWeights(3));
        Assert.Equal((0.25, 4.0), w.ScaleRange);
        Assert.Equal(4, w.OutputStride);
        Assert.False(w.FreshScenes);

        // A background weight of 1 is the unweighted loss; null classWeights is "not given".
        Assert.Null(Parse("""{"backgroundWeight": 1}""").LossWeights(11));
        Assert.Null(Parse("""{"classWeights": null}""").ClassWeights);
    }

    [Theory]
    [InlineData("""{"scaleRange": [0.1, 1]}""", "scaleRange")]
    [InlineData("""{"scaleRange": [1, 5]}""", "scaleRange")]
    [InlineData("""{"scaleRange": [2, 1]}""", "scaleRange")]
    [InlineData("""{"scaleRange": [1]}""", "scaleRange")]
    [InlineData("""{"scaleRange": [1, 1, 1]}""", "scaleRange")]
    [InlineData("""{"scaleRange": 1}""", "scaleRange")]
    [InlineData("""{"scaleRange": [1, "2"]}""", "scaleRange")]
    [InlineData("""{"backgroundWeight": -0.5}""", "backgroundWeight")]
    [InlineData("""{"backgroundWeight": 101}""", "backgroundWeight")]
    [InlineData("""{"backgroundWeight": "low"}""", "backgroundWeight")]
    [InlineData("""{"classWeights": []}""", "classWeights")]
    [InlineData("""{"classWeights": [1, -1]}""", "classWeights[1]")]
    [InlineData("""{"classWeights": [1, 200]}""", "classWeights[1]")]
    [InlineData("""{"classWeights": [1, "a"]}""", "classWeights[1]")]
    [InlineData("""{"classWeights": [0, 0]}""", "classWeights")]
    [InlineData("""{"classWeights": 1}""", "classWeights")]
    [InlineData("""{"classWeights": [1, 1], "backgroundWeight": 0.5}""", "backgroundWeight or config.classWeights")]
    [InlineData("""{"freshScenes": "yes"}""", "freshScenes")]
    [InlineData("""{"freshScenes": 1}""", "freshScenes")]
    [InlineData("""{"freshScenes": true}""", "maxTrainImages")]
    [InlineData("""{"outputStride": 3}""", "outputStride")]
    [InlineData("""{"outputStride": 8}""", "outputStride")]
    [InlineData("""{"outputStride": 2.5}""", "outputStride")]
    [InlineData("""{"outputStride": "2"}""", "outputStride")]
    public void OutOfRangeValues_AreRefused_NamingTheKey(string json, string named)
    {
        var e = Assert.Throws<InvalidRequestException>(() => Parse(json));
        Assert.Contains($"config.{named}", e.Message);
    }

    [Fact]
    public void TooManyClassWeights_AreRefused()
    {
        var json = $$"""{"classWeights": [{{string.Join(", ", Enumerable.Repeat("1", 256))}}]}""";
        Assert.Contains("1 to 255", Assert.Throws<InvalidRequestException>(() => Parse(json)).Message);
    }
}
