using System.Net;
using System.Text.Json;
using BeitV2.Web.Tests.Api;
using BeitV2.Web.Tests.Jobs;
using SixLabors.ImageSharp;

namespace BeitV2.Web.Tests.Collections;

/// <summary>A collection of 300 Fashion-MNIST images indexed by the shipped classifier and tokenizer: search, items, uploads, codes.</summary>
[Collection(JobsCollection.Name)]
public sealed class CollectionSearchTests(CollectionsFixture fixture) : IClassFixture<CollectionsFixture>
{
    private HttpClient Client => fixture.Client;
    private string Id => fixture.Id;

    [Fact]
    public async Task The_index_job_fills_the_collection_and_reports_its_throughput()
    {
        var job = fixture.Job;
        Assert.Equal("index", job.Str("type"));
        Assert.Equal(JsonValueKind.Null, job.GetProperty("outputModel").ValueKind);
        var result = job.GetProperty("result");
        Assert.Equal(Id, result.Str("collection"));
        Assert.Equal(CollectionsFixture.Planned, result.Int("items"));
        Assert.True(result.GetProperty("imagesPerSecond").GetDouble() > 0);
        Assert.Equal(6, job.Step());   // 300 images, 50 a step
        Assert.Equal(1.0, job.GetProperty("progress").GetProperty("fraction").GetDouble());

        var c = await Client.GetAsync($"/api/v1/collections/{Id}").JsonAsync();
        Assert.Equal("ready", c.Str("status"));
        Assert.Equal("fashion-mnist", c.Str("dataset"));
        Assert.Equal(fixture.Host.Registry.DefaultId("classifier"), c.Str("embeddingModel"));   // the embeddings route's default
        Assert.Equal(fixture.Tokenizer, c.Str("tokenizer"));
        Assert.Equal("cls", c.Str("pooling"));
        Assert.Equal(CollectionsFixture.Planned, c.GetProperty("indexed").GetInt64());
        Assert.True(c.GetProperty("items").GetInt64() >= CollectionsFixture.Planned);
        Assert.Equal(10, c.Items("labels").Length);
        Assert.Equal("exact", c.GetProperty("index").Str("kind"));
        Assert.Equal("float32", c.GetProperty("index").Str("quantization"));
        Assert.True(c.GetProperty("index").GetProperty("bytes").GetInt64() >= CollectionsFixture.Planned * c.Int("dim") * 4L);
        Assert.True(c.GetProperty("diskBytes").GetInt64() > c.GetProperty("index").GetProperty("bytes").GetInt64());
        var all = await Client.GetAsync("/api/v1/collections").JsonAsync();
        Assert.Contains(all.EnumerateArray(), e => e.Str("id") == Id);
    }

    [Fact]
    public async Task Searching_by_an_item_finds_it_first_and_neighbours_mostly_of_its_class()
    {
        var sameLabel = 0;
        var neighbours = 0;
        for (var item = 0; item < 20; item++)
        {
            var answer = await Client.PostAsync($"/api/v1/collections/{Id}/search?item={item}&k=10", null).JsonAsync();
            Assert.Equal(Id, answer.Str("collection"));
            Assert.Equal(10, answer.Int("k"));
            Assert.Equal(item, answer.GetProperty("query").GetProperty("item").GetInt64());
            var results = answer.Items("results");
            Assert.Equal(10, results.Length);
            Assert.Equal(item, results[0].GetProperty("item").GetInt64());
            Assert.Equal(1.0, results[0].GetProperty("score").GetDouble(), 4);
            var scores = results.Select(r => r.GetProperty("score").GetDouble()).ToList();
            Assert.Equal(scores.OrderByDescending(s => s), scores);
            var label = results[0].Str("label");
            sameLabel += results.Skip(1).Count(r => r.Str("label") == label);
            neighbours += 9;
            Assert.Equal($"/api/v1/collections/{Id}/items/{item}/thumbnail", results[0].Str("thumbnail"));
        }
        // Most neighbours share the label (measured: 108 of 180 with the shipped classifier's [CLS] feature; chance is about 1 in 10).
        Assert.True(sameLabel > neighbours / 2, $"{sameLabel} of {neighbours} neighbours share their query's label");
    }

    [Fact]
    public async Task Searching_by_an_uploaded_sample_finds_its_class()
    {
        var image = await File.ReadAllBytesAsync(CollectionsFixture.Sample("fashion-0-ankle-boot.png"));
        var answer = await Client.PostAsync($"/api/v1/collections/{Id}/search?k=10", Http.Images(image)).JsonAsync();
        Assert.Equal(JsonValueKind.Null, answer.GetProperty("query").GetProperty("item").ValueKind);
        var labels = answer.Items("results").Select(r => r.Str("label")).ToList();
        Assert.Equal("Ankle boot", labels[0]);
        Assert.True(labels.All(l => l is "Ankle boot" or "Sneaker" or "Sandal"), "not all footwear: " + string.Join(", ", labels));
        // A raw image/* body works too, and naming the collection's own model is fine.
        var raw = await Client.PostAsync($"/api/v1/collections/{Id}/search?k=3&model={answer.Str("model")}", Http.Raw(image, "image/png")).JsonAsync();
        Assert.Equal(answer.Items("results")[0].GetProperty("item").GetInt64(), raw.Items("results")[0].GetProperty("item").GetInt64());
    }

    [Fact]
    public async Task Added_images_are_found_as_themselves_with_their_file_names_and_pictures()
    {
        var sneaker = await File.ReadAllBytesAsync(CollectionsFixture.Sample("fashion-9-sneaker.png"));
        var bag = await File.ReadAllBytesAsync(CollectionsFixture.Sample("fashion-18-bag.png"));
        var before = (await Client.GetAsync($"/api/v1/collections/{Id}").JsonAsync()).GetProperty("items").GetInt64();
        var form = new MultipartFormDataContent();
        var sneakerPart = Http.Part(sneaker, "image/png");
        form.Add(sneakerPart, "image", "my-sneaker.png");
        form.Add(Http.Part(bag, "image/png"), "image", "my-bag.png");
        var added = await Client.PostAsync($"/api/v1/collections/{Id}/images", form).JsonAsync();
        Assert.Equal(before + 2, added.GetProperty("items").GetInt64());
        var items = added.Items("added");
        Assert.Equal([before, before + 1], items.Select(i => i.GetProperty("item").GetInt64()));
        Assert.Equal(["my-sneaker.png", "my-bag.png"], items.Select(i => i.Str("fileName")));

        var found = await Client.PostAsync($"/api/v1/collections/{Id}/search?k=5", Http.Images(sneaker)).JsonAsync();
        var top = found.Items("results")[0];
        Assert.Equal(before, top.GetProperty("item").GetInt64());
        Assert.Equal(1.0, top.GetProperty("score").GetDouble(), 4);
        Assert.Equal(JsonValueKind.Null, top.GetProperty("label").ValueKind);   // uploads carry no label

        var item = await Client.GetAsync($"/api/v1/collections/{Id}/items/{before + 1}").JsonAsync();
        Assert.Equal("my-bag.png", item.Str("source"));
        Assert.Equal((112, 112), (item.Int("width"), item.Int("height")));   // the sample is Fashion-MNIST item 18 upscaled 4×
        using var thumbnail = Image.Load(await Client.GetAsync($"/api/v1/collections/{Id}/items/{before + 1}/thumbnail").PngAsync());
        Assert.Equal((96, 96), (thumbnail.Width, thumbnail.Height));
        var collection = await Client.GetAsync($"/api/v1/collections/{Id}").JsonAsync();
        Assert.Equal(before + 2, collection.GetProperty("indexed").GetInt64());
    }

    [Fact]
    public async Task A_dataset_item_describes_its_source_and_its_thumbnail_is_the_dataset_image()
    {
        var item = await Client.GetAsync($"/api/v1/collections/{Id}/items/7").JsonAsync();
        Assert.Equal("7", item.Str("source"));
        Assert.Equal(7, item.Int("datasetIndex"));
        Assert.Equal((28, 28), (item.Int("width"), item.Int("height")));
        var expected = fixture.Host.Services.GetService(typeof(BeitV2.Web.Datasets.DatasetCatalog)) is BeitV2.Web.Datasets.DatasetCatalog catalog
            ? catalog.Open("fashion-mnist", null, null, 0).Train.Get(7) : null;
        Assert.Equal(BeitV2.Ml.Data.FashionMnistDataset.Classes[expected!.Label], item.Str("label"));
        using var png = Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(await Client.GetAsync($"/api/v1/collections/{Id}/items/7/thumbnail").PngAsync());
        Assert.Equal(expected.Image.Pixels, BeitV2.Ml.Imaging.RgbBuffer.FromImage(png).Pixels);
    }

    [Fact]
    public async Task Code_statistics_count_every_token_of_every_item()
    {
        var c = await Client.GetAsync($"/api/v1/collections/{Id}").JsonAsync();
        var stats = await Client.GetAsync($"/api/v1/collections/{Id}/codes").JsonAsync();
        var counts = stats.Items("counts").Select(e => e.GetInt64()).ToArray();
        var size = stats.Int("codebookSize");
        Assert.Equal(size, counts.Length);
        Assert.Equal(c.GetProperty("codebookSize").GetInt32(), size);
        var perItem = stats.Int("tokensPerItem");
        Assert.Equal(49, perItem);   // the shipped tokenizer: 28 px, 4 px patches
        Assert.Equal(stats.GetProperty("items").GetInt64() * perItem, counts.Sum());
        Assert.Equal(counts.Sum(), stats.GetProperty("tokens").GetInt64());
        Assert.Equal(counts.Count(n => n > 0), stats.Int("usedCodes"));
        var p = counts.Where(n => n > 0).Select(n => (double)n / counts.Sum());
        Assert.Equal(Math.Exp(-p.Sum(x => x * Math.Log(x))), stats.GetProperty("perplexity").GetDouble(), 3);
        var perClass = stats.Items("topCodesPerClass");
        Assert.Equal(10, perClass.Length);
        Assert.Equal("T-shirt/top", perClass[0].Str("label"));
        var codes = perClass[0].Items("codes");
        Assert.InRange(codes.Length, 1, 10);
        Assert.Equal(codes.Select(x => x.GetProperty("count").GetInt64()).OrderByDescending(n => n), codes.Select(x => x.GetProperty("count").GetInt64()));
    }

    [Fact]
    public async Task The_codebook_route_lists_the_patches_of_a_code_and_the_tokenizer_agrees_with_each()
    {
        var stats = await Client.GetAsync($"/api/v1/collections/{Id}/codes").JsonAsync();
        var counts = stats.Items("counts").Select(e => e.GetInt64()).ToArray();
        // A code used, but not by the background: the most frequent code is usually the empty border.
        var code = Array.IndexOf(counts, counts.Where(n => n > 0).OrderBy(n => n).ElementAt(counts.Count(n => n > 0) / 2));
        var page = await Client.GetAsync($"/api/v1/models/{fixture.Tokenizer}/codebook/{code}?collection={Id}&limit=4").JsonAsync();
        Assert.Equal(fixture.Tokenizer, page.Str("model"));
        Assert.Equal(code, page.Int("code"));
        Assert.Equal(Id, page.Str("collection"));
        Assert.Equal(counts[code], page.GetProperty("total").GetInt64());
        var patches = page.Items("patches");
        Assert.Equal(Math.Min(4, counts[code]), patches.Length);
        foreach (var patch in patches)
        {
            long item = patch.GetProperty("item").GetInt64();
            int row = patch.Int("row"), col = patch.Int("col");
            Assert.Equal($"/api/v1/collections/{Id}/items/{item}/patch?row={row}&col={col}", patch.Str("crop"));
            using var crop = Image.Load(await Client.GetAsync(patch.Str("crop")).PngAsync());
            Assert.True(crop.Width >= 48 && crop.Width == crop.Height, $"{crop.Width}×{crop.Height}");
            // The item's own image through the tokens route: the same code at that patch.
            var picture = await Client.GetAsync($"/api/v1/collections/{Id}/items/{item}/thumbnail").PngAsync();
            var tokens = await Client.PostAsync($"/api/v1/tokens?model={fixture.Tokenizer}", Http.Images(picture)).JsonAsync();
            Assert.Equal(code, tokens.Items("images")[0].GetProperty("tokens")[row][col].GetInt32());
        }
        var last = await Client.GetAsync($"/api/v1/models/{fixture.Tokenizer}/codebook/{code}?collection={Id}&offset={counts[code] - 1}&limit=500").JsonAsync();
        Assert.Single(last.Items("patches"));
    }

    [Fact]
    public async Task Bad_requests_get_clear_answers()
    {
        var image = Http.Images(await File.ReadAllBytesAsync(CollectionsFixture.Sample("fashion-0-ankle-boot.png")));
        await Client.GetAsync("/api/v1/collections/no-such-thing").ProblemAsync(404);
        await Client.DeleteAsync("/api/v1/collections/no-such-thing").ProblemAsync(404);
        await Client.PostAsync("/api/v1/collections/no-such-thing/search?item=0", null).ProblemAsync(404);
        await Client.PostAsync("/api/v1/collections/no-such-thing/images", image).ProblemAsync(404);
        Assert.Contains("between 1 and 100", await Client.PostAsync($"/api/v1/collections/{Id}/search?item=0&k=0", null).ProblemAsync(400));
        Assert.Contains("between 1 and 100", await Client.PostAsync($"/api/v1/collections/{Id}/search?item=0&k=101", null).ProblemAsync(400));
        Assert.Contains("no item 100000", await Client.PostAsync($"/api/v1/collections/{Id}/search?item=100000", null).ProblemAsync(404));
        await Client.GetAsync($"/api/v1/collections/{Id}/items/100000/thumbnail").ProblemAsync(404);
        await Client.PostAsync($"/api/v1/collections/{Id}/search", null).ProblemAsync(400);
        await Client.PostAsync($"/api/v1/collections/{Id}/search", new StringContent("hello", System.Text.Encoding.UTF8, "text/plain")).ProblemAsync(415);
        Assert.Contains("not in a supported image format", await Client.PostAsync($"/api/v1/collections/{Id}/search", Http.Raw([1, 2, 3, 4], "image/png")).ProblemAsync(415));
        var huge = new ByteArrayContent(new byte[21 * 1024 * 1024]);
        huge.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("image/png");
        await Client.PostAsync($"/api/v1/collections/{Id}/search", huge).ProblemAsync(413);
        var other = fixture.Host.Registry.DefaultId("pretrain")!;
        Assert.Contains("was indexed with model", await Client.PostAsync($"/api/v1/collections/{Id}/search?k=3&model={other}", image).ProblemAsync(409));
        Assert.Contains("not both", await Client.PostAsync($"/api/v1/collections/{Id}/search?item=1", image).ProblemAsync(400));
        await Client.GetAsync($"/api/v1/collections/{Id}/items/0/patch?row=7&col=0").ProblemAsync(400);

        var tok = fixture.Tokenizer;
        Assert.Contains("?collection=", await Client.GetAsync($"/api/v1/models/{tok}/codebook/3").ProblemAsync(400));
        Assert.Contains("outside the codebook", await Client.GetAsync($"/api/v1/models/{tok}/codebook/100000?collection={Id}").ProblemAsync(400));
        await Client.GetAsync($"/api/v1/models/{tok}/codebook/-1?collection={Id}").ProblemAsync(400);
        await Client.GetAsync($"/api/v1/models/{tok}/codebook/3?collection={Id}&limit=0").ProblemAsync(400);
        await Client.GetAsync($"/api/v1/models/{tok}/codebook/3?collection={Id}&limit=501").ProblemAsync(400);
        await Client.GetAsync($"/api/v1/models/{tok}/codebook/3?collection=no-such-thing").ProblemAsync(404);
        await Client.GetAsync($"/api/v1/models/no-such-model/codebook/3?collection={Id}").ProblemAsync(404);
        Assert.Contains("only a tokenizer", await Client.GetAsync($"/api/v1/models/{other}/codebook/3?collection={Id}").ProblemAsync(400));

        async Task Create(object body, int status, string? says = null)
        {
            var detail = await Client.PostAsync("/api/v1/collections", System.Net.Http.Json.JsonContent.Create(body)).ProblemAsync(status);
            if (says is not null) Assert.Contains(says, detail);
        }
        await Create(new { name = "x" }, 400, "'dataset'");
        await Create(new { dataset = "fashion-mnist" }, 400, "'name'");
        await Create(new { name = "x", dataset = "no-such-dataset" }, 404);
        await Create(new { name = "x", dataset = "fashion-mnist", embeddingModel = "no-such-model" }, 404);
        await Create(new { name = "x", dataset = "fashion-mnist", embeddingModel = tok }, 400);
        await Create(new { name = "x", dataset = "fashion-mnist", tokenizer = other }, 400);
        await Create(new { name = "x", dataset = "fashion-mnist", pooling = "max" }, 400, "pooling");
        await Create(new { name = "x", dataset = "fashion-mnist", maxImages = 0 }, 400, "maxImages");
        await Create(new { name = "x", dataset = "fashion-mnist", config = new { epochs = 2 } }, 400, "config.epochs");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType,
            (await Client.PostAsync("/api/v1/collections", new StringContent("{}", System.Text.Encoding.UTF8, "text/plain"))).StatusCode);
        Assert.Contains("POST /api/v1/collections",
            await Client.PostAsync("/api/v1/jobs", System.Net.Http.Json.JsonContent.Create(new { type = "index", dataset = "fashion-mnist" })).ProblemAsync(400));
        var list = await Client.GetAsync("/api/v1/collections").JsonAsync();
        Assert.Single(list.EnumerateArray());   // none of the bad requests created anything
        fixture.Host.AssertNoServerErrors();
    }
}
