using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Serving;
using BeitV2.Web.Configuration;
using BeitV2.Web.Inference;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Inference;

/// <summary>
/// The batching worker on the ONNX engine: batches of several sizes (held until full: MaxBatch images, a wait window
/// far longer than any test) give every image the answer it gets alone from the TorchSharp engine.
/// </summary>
public sealed class EngineBatchingTests
{
    [Fact]
    public async Task WorkerBatchesOfEverySize_AnswerAsSingleImagesOnTorch()
    {
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        manual_seed(5);
        using (var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 4))) ModelPackage.Save(model, package);
        var serving = new ServingOptions { Engine = ServingEngine.Onnx, Threads = 1 };
        var size = VitConfig.Micro().ImgSize;
        var random = new Random(9);
        var images = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 3 * size * size).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray()).ToArray();

        ClassProbabilities[] alone;
        using (var torch = ServedModelLoader.Load(package, serving with { Engine = ServingEngine.Torch }).Model)
            alone = images.Select(image => torch.Classify(ImageBatch.Of(size, image))[0]).ToArray();

        foreach (var n in new[] { 1, 2, 3, 5, 8 })
        {
            var load = ServedModelLoader.Load(package, serving);
            Assert.Equal(ServingEngine.Onnx, load.Engine);
            using var worker = new BatchingWorker($"engine-batching-{n}", load.Model,
                new InferenceOptions { MaxBatch = n, MaxWaitMs = 600_000, MaxGatherMs = 0 }, NullLogger.Instance);
            var picked = Enumerable.Range(0, n).Select(i => (i * 3 + n) % images.Length).ToArray();
            var tasks = picked.Select(i => worker.TryEnqueue(ServedOperations.Classify, images[i])!).ToArray();
            var results = await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(5));
            Assert.Equal(new[] { n }, worker.RecentBatchSizes);
            for (var i = 0; i < n; i++)
            {
                var want = alone[picked[i]].Probabilities;
                var got = results[i].Probabilities;
                var atol = 1e-5 * Math.Max(1.0, want.Max(MathF.Abs));
                for (var k = 0; k < want.Length; k++)
                    Assert.True(Math.Abs(got[k] - want[k]) <= atol + 1e-5 * Math.Abs(want[k]), $"batch of {n}, image {picked[i]}, class {k}: {got[k]} vs {want[k]}");
            }
        }
    }
}
