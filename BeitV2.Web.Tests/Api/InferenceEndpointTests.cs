using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// The four inference routes through the whole HTTP pipeline, several images per request, against
/// the contract's response shapes (README, Inference).
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class InferenceEndpointTests(SeededApi api)
{
    private static readonly byte[][] Photos = { TestImages.Coffee, TestImages.Rocket, TestImages.Chelsea };

    private HttpClient Client => api.Client;

    [Fact]
    public async Task Tokens_GivesAGridOfCodebookIdsPerImage()
    {
        var json = await Client.PostAsync("/api/v1/tokens", Http.Images(Photos)).JsonAsync();

        Assert.Equal(api.Tokenizer.Id, json.Str("model"));
        var grid = api.Tokenizer.ImageSize / api.Tokenizer.PatchSize;
        Assert.Equal(4, grid);
        Assert.Equal(grid, json.Int("rows"));
        Assert.Equal(grid, json.Int("cols"));
        var codebook = json.Int("codebookSize");
        Assert.Equal(64, codebook);
        Assert.Equal(api.Tokenizer.CodebookSize, codebook);
        var images = json.Items("images");
        Assert.Equal(Photos.Length, images.Length);
        for (var i = 0; i < images.Length; i++)
        {
            Assert.Equal(i, images[i].Int("index"));
            var rows = images[i].Items("tokens");
            Assert.Equal(grid, rows.Length);
            var ids = rows.SelectMany(r =>
            {
                Assert.Equal(grid, r.GetArrayLength());
                return r.EnumerateArray().Select(v => v.GetInt32());
            }).ToList();
            Assert.All(ids, id => Assert.InRange(id, 0, codebook - 1));
            Assert.Equal(ids.Distinct().Count(), images[i].Int("distinctCodes"));
        }
        await api.AssertStillServingAsync();
    }

    [Fact]
    public async Task Tokens_ViewLocatesTheGridOnTheUploadedImage()
    {
        var photos = new[] { TestImages.Coffee, TestImages.Rocket, TestImages.Png(20, 12) };
        var json = await Client.PostAsync("/api/v1/tokens", Http.Images(photos)).JsonAsync();
        var images = json.Items("images");
        var transform = new BeitV2.Ml.Imaging.EvalTransform(api.Tokenizer.ImageSize);
        for (var i = 0; i < photos.Length; i++)
        {
            var (w, h) = TestImages.DecodedSize(photos[i]);
            var view = images[i].GetProperty("view");
            Assert.Equal(w, view.Int("imageWidth"));
            Assert.Equal(h, view.Int("imageHeight"));
            // The crop box of the evaluation transform, mapped back from the resized image to the upload.
            var plan = transform.Plan(w, h);
            double sx = (double)w / plan.ResizedWidth, sy = (double)h / plan.ResizedHeight;
            Assert.Equal(plan.Crop.Left * sx, view.GetProperty("x").GetDouble(), 6);
            Assert.Equal(plan.Crop.Top * sy, view.GetProperty("y").GetDouble(), 6);
            Assert.Equal(plan.Crop.Width * sx, view.GetProperty("width").GetDouble(), 6);
            Assert.Equal(plan.Crop.Height * sy, view.GetProperty("height").GetDouble(), 6);
            // A centred square: the middle of the view is the middle of the image.
            Assert.InRange(view.GetProperty("x").GetDouble() + view.GetProperty("width").GetDouble() / 2 - w / 2.0, -sx, sx);
            Assert.InRange(view.GetProperty("y").GetDouble() + view.GetProperty("height").GetDouble() / 2 - h / 2.0, -sy, sy);
        }
        await api.AssertStillServingAsync();
    }

    [Theory]
    [InlineData(null, 512)]
    [InlineData(300, 300)]
    [InlineData(2048, 2048)]
    public async Task Tokens_FormatPng_DrawsTheTokenMapOverThePhoto_AtTheRequestedSize(int? size, int longer)
    {
        var (w, h) = TestImages.DecodedSize(TestImages.Rocket);
        var query = size is null ? "" : $"&size={size}";
        var png = await Client.PostAsync("/api/v1/tokens?format=png" + query, Http.Images(TestImages.Rocket)).PngAsync();

        using var image = Image.Load<Rgb24>(png);
        // The whole photo, aspect ratio kept, its longer side as asked (it was the tokenizer's 32 px view ×2 before).
        var k = (double)longer / Math.Max(w, h);
        Assert.Equal((int)Math.Round(w * k), image.Width);
        Assert.Equal((int)Math.Round(h * k), image.Height);
        Assert.Equal(longer, Math.Max(image.Width, image.Height));

        // The grid lies over the view the JSON answer reports: down the middle of its first column of cells,
        // exactly rows-1 white grid lines (tinted or darkened photo pixels are never pure white).
        var json = await Client.PostAsync("/api/v1/tokens", Http.Images(TestImages.Rocket)).JsonAsync();
        var view = json.Items("images")[0].GetProperty("view");
        var rows = json.Int("rows");
        var x = (int)((view.GetProperty("x").GetDouble() + view.GetProperty("width").GetDouble() / rows / 2) * k);
        var white = Enumerable.Range(0, image.Height).Count(y => image[x, y] == new Rgb24(255, 255, 255));
        Assert.Equal(rows - 1, white);
    }

    [Theory]
    [InlineData("size=63")]
    [InlineData("size=2049")]
    [InlineData("size=0")]
    public async Task Tokens_SizeOutsideItsRange_Is400(string query)
    {
        var detail = await Client.PostAsync("/api/v1/tokens?format=png&" + query, Http.Images(SeededApi.SmallImage)).ProblemAsync(400);
        Assert.Contains("between 64 and 2048", detail);
    }

    [Theory]
    [InlineData("cls")]
    [InlineData("mean")]
    public async Task Embeddings_OneVectorPerImage(string pooling)
    {
        var json = await Client.PostAsync($"/api/v1/embeddings?pooling={pooling}", Http.Images(Photos)).JsonAsync();

        Assert.Equal(api.Backbone.Id, json.Str("model"));   // the default backbone
        Assert.Equal(pooling, json.Str("pooling"));
        Assert.False(json.GetProperty("normalized").GetBoolean());
        var dim = json.Int("dim");
        Assert.Equal(api.Backbone.EmbedDim, dim);
        var data = json.Items("data");
        Assert.Equal(Photos.Length, data.Length);
        for (var i = 0; i < data.Length; i++)
        {
            Assert.Equal(i, data[i].Int("index"));
            var v = data[i].GetProperty("embedding").Floats();
            Assert.Equal(dim, v.Length);
            Assert.All(v, x => Assert.True(float.IsFinite(x)));
        }
        // Different photos, different embeddings.
        Assert.NotEqual(data[0].GetProperty("embedding").Floats(), data[1].GetProperty("embedding").Floats());

        var normalized = await Client.PostAsync($"/api/v1/embeddings?pooling={pooling}&normalize=true", Http.Images(Photos)).JsonAsync();
        Assert.True(normalized.GetProperty("normalized").GetBoolean());
        for (var i = 0; i < data.Length; i++)
        {
            var raw = data[i].GetProperty("embedding").Floats();
            var unit = normalized.Items("data")[i].GetProperty("embedding").Floats();
            Assert.Equal(1.0, Math.Sqrt(unit.Sum(x => (double)x * x)), 4);
            var norm = Math.Sqrt(raw.Sum(x => (double)x * x));
            for (var j = 0; j < dim; j++) Assert.Equal(raw[j] / norm, unit[j], 4);
        }
        await api.AssertStillServingAsync();
    }

    [Fact]
    public async Task Embeddings_FromAClassifierAndAPretrainingModel()
    {
        foreach (var model in new[] { api.Classifier, api.Pretrain })
        {
            var json = await Client.PostAsync($"/api/v1/embeddings?model={model.Id}&pooling=mean", Http.Images(TestImages.Coffee, TestImages.Chelsea)).JsonAsync();
            Assert.Equal(model.Id, json.Str("model"));
            Assert.Equal(model.EmbedDim, json.Int("dim"));
            Assert.All(json.Items("data"), d => Assert.Equal(model.EmbedDim, d.GetProperty("embedding").GetArrayLength()));
        }
    }

    [Fact]
    public async Task Classify_TopKLabelledPredictionsSortedByProbability()
    {
        var json = await Client.PostAsync("/api/v1/classify?topK=2", Http.Images(Photos)).JsonAsync();

        Assert.Equal(api.Classifier.Id, json.Str("model"));
        var images = json.Items("images");
        Assert.Equal(Photos.Length, images.Length);
        for (var i = 0; i < images.Length; i++)
        {
            Assert.Equal(i, images[i].Int("index"));
            var predictions = images[i].Items("predictions");
            Assert.Equal(2, predictions.Length);
            var p = predictions.Select(x => x.GetProperty("probability").GetSingle()).ToArray();
            Assert.All(p, x => Assert.InRange(x, 0f, 1f));
            Assert.True(p[0] >= p[1], "predictions are not sorted");
            Assert.True(p.Sum() <= 1 + 1e-5, $"probabilities sum to {p.Sum()}");
            foreach (var x in predictions)
            {
                var c = x.Int("classIndex");
                Assert.InRange(c, 0, 2);
                Assert.Equal(SeededApi.ClassifierLabels[c], x.Str("label"));
            }
            Assert.Equal(2, predictions.Select(x => x.Int("classIndex")).Distinct().Count());
        }

        // Default topK is 5; the model has 3 classes, so all of them, summing to 1.
        var all = await Client.PostAsync("/api/v1/classify", Http.Images(TestImages.Coffee)).JsonAsync();
        var every = all.Items("images")[0].Items("predictions");
        Assert.Equal(3, every.Length);
        Assert.Equal(1.0, every.Sum(x => x.GetProperty("probability").GetDouble()), 4);
        Assert.Equal(SeededApi.ClassifierLabels.Order(), every.Select(x => x.Str("label")).Order());
        await api.AssertStillServingAsync();
    }

    [Fact]
    public async Task Segment_MaskAtEachImagesOwnSize()
    {
        byte[][] photos = { TestImages.Coffee, TestImages.Rocket };
        var json = await Client.PostAsync("/api/v1/segment", Http.Images(photos)).JsonAsync();

        Assert.Equal(api.Segmenter.Id, json.Str("model"));
        var images = json.Items("images");
        Assert.Equal(photos.Length, images.Length);
        for (var i = 0; i < images.Length; i++)
        {
            var (w, h) = TestImages.DecodedSize(photos[i]);
            Assert.Equal(i, images[i].Int("index"));
            Assert.Equal(w, images[i].Int("width"));
            Assert.Equal(h, images[i].Int("height"));
            var mask = DecodeMask(Convert.FromBase64String(images[i].Str("maskPng")), w, h);

            var classes = images[i].Items("classes");
            Assert.NotEmpty(classes);
            Assert.Equal(1.0, classes.Sum(c => c.GetProperty("pixelFraction").GetDouble()), 9);
            foreach (var c in classes)
            {
                var k = c.Int("classIndex");
                Assert.Equal(SeededApi.SegmenterLabels[k], c.Str("label"));
                // The fractions describe the mask that was sent.
                Assert.Equal(mask.Count(v => v == k) / (double)mask.Length, c.GetProperty("pixelFraction").GetDouble(), 9);
            }
            Assert.Equal(mask.Distinct().Order(), classes.Select(c => (byte)c.Int("classIndex")).Order());
        }
        await api.AssertStillServingAsync();
    }

    [Fact]
    public async Task Segment_FormatPngAndOverlay_OneImage()
    {
        var (w, h) = TestImages.DecodedSize(TestImages.Chelsea);
        var json = await Client.PostAsync("/api/v1/segment", Http.Images(TestImages.Chelsea)).JsonAsync();
        var expected = DecodeMask(Convert.FromBase64String(json.Items("images")[0].Str("maskPng")), w, h);

        var png = await Client.PostAsync("/api/v1/segment?format=png", Http.Images(TestImages.Chelsea)).PngAsync();
        Assert.Equal(expected, DecodeMask(png, w, h));

        var overlay = await Client.PostAsync("/api/v1/segment?format=overlay", Http.Images(TestImages.Chelsea)).PngAsync();
        using var picture = Image.Load<Rgb24>(overlay);
        Assert.Equal(PngColorType.Rgb, picture.Metadata.GetPngMetadata().ColorType);
        // The overlay itself, pixel for pixel, at the top left; the legend below it.
        Assert.Equal(w, picture.Width);
        Assert.True(picture.Height > h, $"{picture.Height} rows: no legend under the {h}-row overlay");
        using (var decoded = ImageDecoder.Default.Decode(TestImages.Chelsea))
        using (var plain = SegmentationRenderer.Overlay(decoded, expected.Select(b => (int)b).ToArray(), w, h))
            for (var y = 0; y < h; y += 7)
            for (var x = 0; x < w; x += 7)
                Assert.Equal(plain[x, y], picture[x, y]);
    }

    [Fact]
    public async Task Segment_FormatOverlay_HasALegend_WithEachClassColour_LargestFirst()
    {
        var json = await Client.PostAsync("/api/v1/segment", Http.Images(TestImages.Chelsea)).JsonAsync();
        var classes = json.Items("images")[0].Items("classes").Select(c => c.Int("classIndex")).ToList();
        var (_, h) = TestImages.DecodedSize(TestImages.Chelsea);

        var overlay = await Client.PostAsync("/api/v1/segment?format=overlay", Http.Images(TestImages.Chelsea)).PngAsync();
        using var picture = Image.Load<Rgb24>(overlay);
        // Where each class's swatch starts (the first row of the legend holding its exact palette colour).
        var firstRow = new Dictionary<int, int>();
        for (var y = h; y < picture.Height; y++)
        for (var x = 0; x < picture.Width; x++)
            foreach (var c in classes)
                if (!firstRow.ContainsKey(c) && picture[x, y] == Palette.Default[c]) firstRow[c] = y;
        Assert.Equal(classes.Count, firstRow.Count);
        Assert.Equal(classes, classes.OrderBy(c => firstRow[c]).ToList());   // the JSON lists the classes largest first, so does the legend
        Assert.Contains(Enumerable.Range(h, picture.Height - h), y => Enumerable.Range(0, picture.Width).Any(x => picture[x, y] == SegmentationLegend.TextColor));
    }

    [Fact]
    public async Task RawImageBody_IsOneImage()
    {
        var multipart = await Client.PostAsync("/api/v1/classify", Http.Images(TestImages.Rocket)).JsonAsync();
        foreach (var type in new[] { "image/jpeg", "application/octet-stream" })
        {
            var raw = await Client.PostAsync("/api/v1/classify", Http.Raw(TestImages.Rocket, type)).JsonAsync();
            Assert.Equal(multipart.GetProperty("images").GetRawText(), raw.GetProperty("images").GetRawText());
        }

        var tokens = await Client.PostAsync("/api/v1/tokens", Http.Raw(TestImages.Coffee, "image/png")).JsonAsync();
        Assert.Single(tokens.Items("images"));
        var segment = await Client.PostAsync("/api/v1/segment", Http.Raw(TestImages.Chelsea, "image/png")).JsonAsync();
        Assert.Equal(TestImages.DecodedSize(TestImages.Chelsea), (segment.Items("images")[0].Int("width"), segment.Items("images")[0].Int("height")));
        var png = await Client.PostAsync("/api/v1/tokens?format=png", Http.Raw(TestImages.Coffee, "image/png")).PngAsync();
        Assert.NotEmpty(png);
    }

    /// <summary>Dynamic batching and multi-image requests must not change any image's result.</summary>
    [Fact]
    public async Task ResultsDoNotDependOnTheOtherImagesOfTheRequest()
    {
        var together = await Run(Photos);
        for (var i = 0; i < Photos.Length; i++)
        {
            var alone = await Run(new[] { Photos[i] });
            for (var j = 0; j < 2; j++)
            {
                var a = alone.Embeddings[j][0];
                var t = together.Embeddings[j][i];
                Assert.Equal(a.Length, t.Length);
                for (var k = 0; k < a.Length; k++) Assert.True(Math.Abs(a[k] - t[k]) <= 1e-5, $"image {i} embedding {j}[{k}]: {a[k]} alone, {t[k]} batched");
            }
            for (var k = 0; k < alone.Probabilities[0].Length; k++)
                Assert.True(Math.Abs(alone.Probabilities[0][k] - together.Probabilities[i][k]) <= 1e-5, $"image {i} class {k}");
            Assert.Equal(alone.Tokens[0], together.Tokens[i]);
        }
        await api.AssertStillServingAsync();

        async Task<(float[][][] Embeddings, float[][] Probabilities, string[] Tokens)> Run(byte[][] images)
        {
            var embeddings = new float[2][][];
            var pooling = new[] { "cls", "mean" };
            for (var j = 0; j < 2; j++)
            {
                var e = await Client.PostAsync($"/api/v1/embeddings?pooling={pooling[j]}", Http.Images(images)).JsonAsync();
                embeddings[j] = e.Items("data").Select(d => d.GetProperty("embedding").Floats()).ToArray();
            }
            var c = await Client.PostAsync("/api/v1/classify", Http.Images(images)).JsonAsync();
            var probabilities = c.Items("images").Select(im =>
                im.Items("predictions").OrderBy(p => p.Int("classIndex")).Select(p => p.GetProperty("probability").GetSingle()).ToArray()).ToArray();
            var t = await Client.PostAsync("/api/v1/tokens", Http.Images(images)).JsonAsync();
            var tokens = t.Items("images").Select(im => im.GetProperty("tokens").GetRawText()).ToArray();
            return (embeddings, probabilities, tokens);
        }
    }

    /// <summary>Decodes a mask PNG: it must be 8-bit greyscale at the image's size with valid class indices.</summary>
    private byte[] DecodeMask(byte[] png, int width, int height)
    {
        var info = Image.Identify(png);
        Assert.Equal(8, info.PixelType.BitsPerPixel);
        using var image = Image.Load<L8>(png, out var format);
        Assert.Equal(PngFormat.Instance, format);
        Assert.Equal(PngColorType.Grayscale, image.Metadata.GetPngMetadata().ColorType);
        Assert.Equal((width, height), (image.Width, image.Height));
        var values = new byte[width * height];
        image.CopyPixelDataTo(values);
        Assert.All(values.Distinct(), v => Assert.InRange(v, 0, SeededApi.SegmenterLabels.Length - 1));
        return values;
    }
}
