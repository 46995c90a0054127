using System.Net.Http.Json;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using BeitV2.Web.Datasets;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Jobs;

/// <summary>The <c>evaluate</c> job: scores a registered classifier or segmenter, stores the scores as its result, registers nothing.</summary>
[Collection(JobsCollection.Name)]
public sealed class EvaluateJobTests
{
    internal static readonly string[] FashionClasses = [.. FashionMnistDataset.Classes];

    /// <summary>
    /// A micro classifier of the ten Fashion-MNIST classes whose head gives well separated logits (BEiT initialises the
    /// head at 0.001 scale): a hand count must not depend on float noise between a batch of 16 and an image alone.
    /// </summary>
    internal static BeitVisionTransformer TinyClassifier(int classes = 10, int seed = 5)
    {
        TrainerBase.SeedEverything(seed);
        var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: classes));
        using (no_grad()) model.Head!.weight.normal_(0, 3);
        return model;
    }

    [Fact]
    public async Task ClassifierAccuracy_IsTheHandCountOfArgmaxPredictions_AndTheConfusionMatrixAddsUp()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var model = host.Seed(TinyClassifier(), "tiny fashion classifier", FashionClasses);
        var modelsBefore = host.Registry.List().Count;

        const int images = 40, seed = 3;
        var id = await Jobs.StartAsync(client, new { type = "evaluate", baseModel = model.Id, config = new { maxValImages = images, batchSize = 16, seed } });
        var job = await Jobs.WaitAsync(client, id, Jobs.Patience, "succeeded");
        Assert.Equal("evaluate", job.Str("type"));
        Assert.Equal("fashion-mnist", job.Str("dataset")); // the default for a classifier of its classes
        Assert.Equal(model.Id, job.Str("baseModel"));
        Assert.Equal(JsonValueKind.Null, job.GetProperty("outputModel").ValueKind);
        Assert.Equal(modelsBefore, host.Registry.List().Count);
        Assert.Equal(3, job.Step()); // 40 images in batches of 16
        Assert.Equal(1.0, job.GetProperty("progress").GetProperty("fraction").GetDouble());

        var result = job.GetProperty("result");
        Assert.Equal("classifier", result.Str("kind"));
        Assert.Equal("test", result.Str("split"));
        Assert.Equal(images, result.Int("images"));
        Assert.Equal(FashionClasses, result.Items("classes").Select(c => c.GetString()));
        var matrix = result.Items("confusionMatrix").Select(row => row.EnumerateArray().Select(v => v.GetInt64()).ToArray()).ToArray();

        // By hand: the same images (the catalog's seeded subset of the test split), each alone through the model with the
        // serving transform of its manifest (centre crop, ImageNet statistics), argmax against the label.
        var (_, test) = host.Services.GetRequiredService<DatasetCatalog>().Open("fashion-mnist", 1, images, seed);
        using var loaded = ModelPackage.Load(host.Registry.PackageDirectory(model.Id));
        var vit = loaded.As<BeitVisionTransformer>();
        vit.eval();
        var transform = new EvalTransform(vit.Config.ImgSize);
        var expected = new long[10, 10];
        var correct = 0;
        for (var i = 0; i < test!.Count; i++)
        {
            var sample = test.Get(i);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var predicted = (int)vit.forward(transform.ToPixelValues(sample.Image)).argmax(-1).item<long>();
            expected[sample.Label, predicted]++;
            if (predicted == sample.Label) correct++;
        }
        Assert.Equal(images, test.Count);
        Assert.Equal((double)correct / images, result.GetProperty("accuracy").GetDouble(), 12);
        for (var t = 0; t < 10; t++)
            Assert.Equal(Enumerable.Range(0, 10).Select(p => expected[t, p]), matrix[t]);
        Assert.True(matrix.SelectMany(r => r).Distinct().Count() > 2, "a degenerate model: every image predicted alike");

        var perClass = result.Items("perClass");
        for (var k = 0; k < 10; k++)
        {
            var support = matrix[k].Sum();
            Assert.Equal(FashionClasses[k], perClass[k].Str("name"));
            Assert.Equal(support, perClass[k].GetProperty("images").GetInt64());
            if (support == 0) Assert.Equal(JsonValueKind.Null, perClass[k].GetProperty("accuracy").ValueKind);
            else Assert.Equal((double)matrix[k][k] / support, perClass[k].GetProperty("accuracy").GetDouble(), 12);
        }
        Assert.Equal(result.GetProperty("accuracy").GetDouble(), job.GetProperty("lastMetrics").GetProperty("accuracy").GetDouble());
        Assert.False(result.TryGetProperty("meanIoU", out _));
        var log = await client.GetAsync($"/api/v1/jobs/{id}/log").JsonAsync();
        Assert.Contains(log.Items("lines"), l => l.GetString()!.Contains("top-1 accuracy"));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task SegmenterMeanIoU_IsTheMeanOfItsClassIoUs_OverEveryLabelledPixel()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        TrainerBase.SeedEverything(2);
        var model = host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 11)), "tiny scene segmenter", ["background", .. FashionClasses]);

        const int images = 6;
        var id = await Jobs.StartAsync(client,
            new { type = "evaluate", baseModel = model.Id, dataset = "fashion-mnist-seg", config = new { maxValImages = images, batchSize = 4 } });
        var job = await Jobs.WaitAsync(client, id, Jobs.Patience, "succeeded");
        var result = job.GetProperty("result");
        Assert.Equal("segmenter", result.Str("kind"));
        Assert.Equal(images, result.Int("images"));
        Assert.False(result.TryGetProperty("confusionMatrix", out _));

        var perClass = result.Items("perClass");
        Assert.Equal(11, perClass.Length);
        double? Value(JsonElement c, string name) => c.GetProperty(name).ValueKind == JsonValueKind.Null ? null : c.GetProperty(name).GetDouble();
        var ious = perClass.Select(c => c.TryGetProperty("iou", out _) ? Value(c, "iou") : null).ToList();
        var accuracies = perClass.Select(c => Value(c, "accuracy")).ToList();
        var pixels = perClass.Select(c => c.GetProperty("pixels").GetInt64()).ToList();
        Assert.Contains(ious, v => v is not null);
        Assert.Equal(ious.OfType<double>().Average(), result.GetProperty("meanIoU").GetDouble(), 12);
        Assert.Equal(accuracies.OfType<double>().Average(), result.GetProperty("meanClassAccuracy").GetDouble(), 12);
        // Pixel accuracy: correct pixels (accuracy × pixels per class) over all labelled pixels, every pixel of the
        // scenes resized to the model's 64×64 (the composed scenes have no unlabelled pixels).
        Assert.Equal(images * 64L * 64, pixels.Sum());
        Assert.Equal(accuracies.Select((a, k) => (a ?? 0) * pixels[k]).Sum() / pixels.Sum(), result.GetProperty("pixelAccuracy").GetDouble(), 9);
        for (var k = 0; k < 11; k++)
            if (pixels[k] == 0) Assert.Null(accuracies[k]);
        Assert.Equal(result.GetProperty("meanIoU").GetDouble(), job.GetProperty("lastMetrics").GetProperty("mIoU").GetDouble());
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task ACancelledEvaluation_StopsWithoutAResult_AndAResumeScoresTheImagesAgain()
    {
        using var host = new ApiHost(new Dictionary<string, string?> { [HeldStep.Setting] = "true" });
        using var client = host.CreateClient();
        var model = host.Seed(TinyClassifier(), "tiny fashion classifier", FashionClasses);
        string id;
        using (new HeldStep(host.DataDirectory, 1)) // the cancel arrives while the job holds after its first batch
        {
            id = await Jobs.StartAsync(client, new { type = "evaluate", baseModel = model.Id, config = new { maxValImages = 24, batchSize = 8 } });
            await Jobs.WaitForStepAsync(client, id, 1, Jobs.Patience);
            await client.PostAsync($"/api/v1/jobs/{id}/cancel", null).JsonAsync(System.Net.HttpStatusCode.Accepted);
            var cancelled = await Jobs.WaitAsync(client, id, Jobs.Patience, "cancelled");
            Assert.Equal(1, cancelled.Step());
            Assert.False(cancelled.TryGetProperty("result", out _));
        }
        await client.PostAsync($"/api/v1/jobs/{id}/resume", null).JsonAsync(System.Net.HttpStatusCode.Accepted);
        var done = await Jobs.WaitAsync(client, id, Jobs.Patience, "succeeded");
        Assert.Equal(3, done.Step());
        Assert.Equal(24, done.GetProperty("result").Int("images"));
        Assert.Equal(24, done.GetProperty("result").Items("confusionMatrix").Sum(r => r.EnumerateArray().Sum(v => v.GetInt64())));
        host.AssertNoServerErrors();
    }

    [Fact]
    public async Task BadEvaluateRequests_Are400Or404_AndCreateNoJob()
    {
        using var host = new ApiHost();
        using var client = host.CreateClient();
        var classifier = host.Seed(TinyClassifier(), "ten classes", FashionClasses);
        var threeClasses = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "three classes", ["cat", "dog", "bird"]);
        var tokenizer = host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "tok");
        var backbone = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)), "backbone");
        Task<string> Post(object body, int status) => client.PostAsJsonAsync("/api/v1/jobs", body).ProblemAsync(status);

        Assert.Contains("no-such-model", await Post(new { type = "evaluate", baseModel = "no-such-model" }, 404));
        Assert.Contains("classifier", await Post(new { type = "evaluate", baseModel = tokenizer.Id }, 400));
        Assert.Contains("is a backbone", await Post(new { type = "evaluate", baseModel = backbone.Id }, 400));
        Assert.Contains("baseModel", await Post(new { type = "evaluate", dataset = "fashion-mnist" }, 400));
        // Class counts that differ: the default dataset does not fit, and neither does one named.
        Assert.Contains("name the classification dataset", await Post(new { type = "evaluate", baseModel = threeClasses.Id }, 400));
        var mismatch = await Post(new { type = "evaluate", baseModel = threeClasses.Id, dataset = "fashion-mnist" }, 400);
        Assert.Contains("3 classes", mismatch);
        Assert.Contains("10", mismatch);
        Assert.Contains("on a classification dataset; 'fashion-mnist-seg' is segmentation", await Post(new { type = "evaluate", baseModel = classifier.Id, dataset = "fashion-mnist-seg" }, 400));
        await Post(new { type = "evaluate", baseModel = classifier.Id, dataset = "no-such-set" }, 404);
        Assert.Contains("epochs", await Post(new { type = "evaluate", baseModel = classifier.Id, config = new { epochs = 2 } }, 400));
        await Post(new { type = "evaluate", baseModel = classifier.Id, config = new { split = "validation" } }, 400);
        await Post(new { type = "evaluate", baseModel = classifier.Id, config = new { maxValImages = 0 } }, 400);
        await Post(new { type = "evaluate", baseModel = classifier.Id, config = new { batchSize = 0 } }, 400);
        await Post(new { type = "evaluate", baseModel = classifier.Id, teacher = tokenizer.Id }, 400);
        await Post(new { type = "evaluate", baseModel = "default:nothing" }, 400);
        Assert.Contains("No default segmenter", await Post(new { type = "evaluate", baseModel = "default:segmenter" }, 404));
        // The split belongs to evaluate jobs only.
        await Post(new { type = "finetune", dataset = "fashion-mnist", config = new { split = "test" } }, 400);

        Assert.Equal(0, (await client.GetAsync("/api/v1/jobs").JsonAsync()).GetArrayLength());
        // A good request by the default's name resolves to its id.
        var ok = await Jobs.StartAsync(client, new { type = "evaluate", baseModel = "default:classifier", config = new { maxValImages = 4, batchSize = 4 } });
        Assert.Equal(classifier.Id, (await Jobs.GetAsync(client, ok)).Str("baseModel"));
        await Jobs.WaitAsync(client, ok, Jobs.Patience, "succeeded");
        host.AssertNoServerErrors();
    }
}
