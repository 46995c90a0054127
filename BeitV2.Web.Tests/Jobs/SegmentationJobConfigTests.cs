using System.Net.Http.Json;
using BeitV2.Web.Tests.Api;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The checks of the segmentation keys that need the dataset or the model happen when the job is submitted (400s).</summary>
[Collection(JobsCollection.Name)]
public sealed class SegmentationJobConfigTests
{
    [Fact]
    public async Task ClassWeightsOfAnotherCount_AndOutputStride2WithoutPatch4_Are400s()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        Task<string> Bad(object config) =>
            client.PostAsJsonAsync("/api/v1/jobs", new { type = "segmentation", dataset = "fashion-mnist-seg", config }).ProblemAsync(400);

        var count = await Bad(new { classWeights = new[] { 0.25, 1, 1 }, maxTrainImages = 32 });
        Assert.Contains("3 weights", count);
        Assert.Contains("11 classes", count);
        Assert.Contains("background", count);
        var stride = await Bad(new { model = "micro", outputStride = 2 });
        Assert.Contains("4 px patches", stride);
        Assert.Contains("'micro' preset has 16 px patches", stride);
        Assert.Contains("backgroundWeight", await Bad(new { backgroundWeight = 0.25, classWeights = Enumerable.Repeat(1.0, 11) }));
        Assert.Equal(0, (await client.GetAsync("/api/v1/jobs").JsonAsync()).GetArrayLength());
        host.AssertNoServerErrors();
    }
}
