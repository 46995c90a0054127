using System.Net;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// All API tests share one collection that runs on its own: they time batches and count requests in
/// flight, and the Prometheus metrics they read are process-wide.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ApiCollection : ICollectionFixture<SeededApi>
{
    public const string Name = "api";
}

/// <summary>
/// One service with a tiny model of every kind registered as the default (classifier, backbone,
/// tokenizer, segmenter, pretrain), and small limits so the limit paths are cheap to hit. Tests that
/// use it must not change its registry.
/// </summary>
public sealed class SeededApi : IDisposable
{
    public const int MaxImagesPerRequest = 4;
    public const long MaxUploadBytes = 1_000_000;
    public const long MaxImagePixels = 4_000_000;

    public static readonly string[] ClassifierLabels = { "cat", "dog", "bird" };
    public static readonly string[] SegmenterLabels = { "background", "sky", "road", "tree" };

    public SeededApi()
    {
        Host = new ApiHost(new Dictionary<string, string?>
        {
            ["Limits:MaxImagesPerRequest"] = MaxImagesPerRequest.ToString(),
            ["Limits:MaxUploadBytes"] = MaxUploadBytes.ToString(),
            ["Limits:MaxImagePixels"] = MaxImagePixels.ToString(),
        });
        Classifier = Host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "micro classifier", ClassifierLabels);
        Backbone = Host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 0)), "micro backbone");
        Tokenizer = Host.Seed(new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false }), "micro tokenizer");
        Segmenter = Host.Seed(new BeitSegmenter(SegmentationConfig.Micro(numClasses: 4)), "micro segmenter", SegmenterLabels);
        Pretrain = Host.Seed(new BeitMim(MimConfig.Micro()), "micro mim");
        Client = Host.CreateClient();
        // Load every model once (the first request of a model pays for it), then freeze the file list.
        foreach (var (route, id) in new[] { ("classify", Classifier.Id), ("embeddings", Backbone.Id), ("tokens", Tokenizer.Id), ("segment", Segmenter.Id), ("embeddings", Pretrain.Id) })
        {
            using var r = Client.PostAsync($"/api/v1/{route}?model={id}", Http.Images(SmallImage)).GetAwaiter().GetResult();
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        Files = Host.DataFiles();
    }

    public ApiHost Host { get; }
    public HttpClient Client { get; }
    public ModelInfo Classifier { get; }
    public ModelInfo Backbone { get; }
    public ModelInfo Tokenizer { get; }
    public ModelInfo Segmenter { get; }
    public ModelInfo Pretrain { get; }

    /// <summary>The data directory's files after seeding: requests must not change them.</summary>
    public IReadOnlyList<string> Files { get; }

    public static byte[] SmallImage { get; } = TestImages.Png(40, 30);

    /// <summary>
    /// The service is still healthy after whatever the test did: live, answers a valid request,
    /// logged no error (no 5xx), and the data directory is exactly as seeded.
    /// </summary>
    public async Task AssertStillServingAsync()
    {
        using (var live = await Client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var json = await Client.PostAsync("/api/v1/classify", Http.Images(SmallImage)).JsonAsync();
        Assert.Equal(Classifier.Id, json.Str("model"));
        Assert.Single(json.Items("images"));
        Assert.Equal(WithoutQueue(Files), WithoutQueue(Host.DataFiles()));
        Host.AssertNoServerErrors();
    }

    /// <summary>
    /// Hangfire's SQLite files change on their own (server heartbeats every 30 s), whatever the requests do, and so
    /// does the liveness file the server rewrites every second (jobs/server.alive, with its temporary file);
    /// folders are compared through their files (a route's services may create an empty folder on first use).
    /// </summary>
    private static IEnumerable<string> WithoutQueue(IEnumerable<string> files) =>
        files.Where(f => !f.StartsWith("jobs/hangfire.db", StringComparison.Ordinal) && !f.StartsWith("jobs/server.alive", StringComparison.Ordinal)
                         && !f.EndsWith('/'));

    public void Dispose()
    {
        Client.Dispose();
        Host.Dispose();
    }
}
