using System.Net;
using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Models.Vqkd;
using static TorchSharp.torch;

namespace BeitV2.Web.Tests.Api;

/// <summary>A service with nothing registered, for importing the official-format fixtures.</summary>
public sealed class ImportApi : IDisposable
{
    public const long MaxImportBytes = 3_000_000;

    public ApiHost Host { get; } = new(new Dictionary<string, string?> { ["Limits:MaxImportBytes"] = MaxImportBytes.ToString() });

    public HttpClient Client { get; }

    public ImportApi() => Client = Host.CreateClient();

    public void Dispose()
    {
        Client.Dispose();
        Host.Dispose();
    }
}

/// <summary>
/// <c>POST /api/v1/models/import</c> with the official-format fixtures, the imported models at work,
/// and the registry routes (list, get, delete, default).
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ModelImportTests(ImportApi api) : IClassFixture<ImportApi>
{
    private static readonly string[] Cifar10 = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" };
    private const string VqkdHeads = """{"encoder":{"num_heads":4},"decoder":{"num_heads":4}}""";

    private HttpClient Client => api.Client;

    [Fact]
    public async Task ImportedClassifier_ClassifiesWithTheLabelsFile()
    {
        using var response = await Client.PostAsync("/api/v1/models/import",
            ImportForm("vit_cls.pth", "classifier", name: "fixture vit", labels: string.Join("\n", Cifar10) + "\n"));
        var json = await response.JsonAsync(HttpStatusCode.Created);

        var model = json.GetProperty("model");
        var id = model.Str("id");
        Assert.Equal($"/api/v1/models/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal("fixture vit", model.Str("name"));
        Assert.Equal("classifier", model.Str("kind"));
        Assert.Equal("beit-vit", model.Str("architecture"));
        Assert.Equal((64, 16, 64, 2, 10), (model.Int("imageSize"), model.Int("patchSize"), model.Int("embedDim"), model.Int("depth"), model.Int("classes")));
        Assert.Equal("import:vit_cls.pth", model.Str("source"));
        Assert.True(model.GetProperty("hasLabels").GetBoolean());
        Assert.NotEmpty(json.Items("notes"));
        Assert.Equal(JsonValueKind.Array, json.GetProperty("defaultedFields").ValueKind);
        Assert.Empty(api.Host.TempFiles());

        var classify = await Client.PostAsync($"/api/v1/classify?model={id}&topK=10", Http.Images(TestImages.Coffee, TestImages.Rocket)).JsonAsync();
        Assert.Equal(id, classify.Str("model"));
        foreach (var image in classify.Items("images"))
        {
            var predictions = image.Items("predictions");
            Assert.Equal(10, predictions.Length);
            Assert.All(predictions, p => Assert.Equal(Cifar10[p.Int("classIndex")], p.Str("label")));
            Assert.Equal(1.0, predictions.Sum(p => p.GetProperty("probability").GetDouble()), 4);
        }

        var labels = await Client.GetAsync($"/api/v1/models/{id}/labels").JsonAsync();
        Assert.Equal(Cifar10, labels.EnumerateArray().Select(l => l.GetString()));
        api.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task ImportedModel_CarriesTheDomainTheUserGave_OrSaysUnknown()
    {
        var described = ImportForm("vit_cls.pth", "classifier", name: "described vit", labels: string.Join("\n", Cifar10) + "\n");
        described.Add(new StringContent("CIFAR-10"), "dataset");
        described.Add(new StringContent("32 px photos of ten everyday object classes"), "domain");
        var id = (await (await Client.PostAsync("/api/v1/models/import", described)).JsonAsync(HttpStatusCode.Created)).GetProperty("model").Str("id");
        var domain = (await Client.GetAsync($"/api/v1/models/{id}").JsonAsync()).GetProperty("domain");
        Assert.Equal("CIFAR-10", domain.Str("dataset"));
        Assert.Equal("32 px photos of ten everyday object classes", domain.Str("description"));
        Assert.Equal(Cifar10, domain.Items("classes").Select(c => c.GetString()));
        // Inference says what the model knows; nobody fitted an out-of-domain score for it, so there is none.
        var classify = await Client.PostAsync($"/api/v1/classify?model={id}", Http.Images(TestImages.Coffee)).JsonAsync();
        Assert.Equal("CIFAR-10", classify.GetProperty("domain").Str("dataset"));
        Assert.Equal(JsonValueKind.Null, classify.Items("images")[0].GetProperty("outOfDomain").ValueKind);

        var silent = await (await Client.PostAsync("/api/v1/models/import", ImportForm("vit_cls.pth", "classifier", name: "silent vit"))).JsonAsync(HttpStatusCode.Created);
        var unknown = (await Client.GetAsync($"/api/v1/models/{silent.GetProperty("model").Str("id")}").JsonAsync()).GetProperty("domain");
        Assert.Equal("unknown", unknown.Str("dataset"));
        Assert.Equal("unknown", unknown.Str("description"));

        var rambling = ImportForm("vit_cls.pth", "classifier", name: "rambling vit");
        rambling.Add(new StringContent(new string('x', 301)), "domain");
        var detail = await Client.PostAsync("/api/v1/models/import", rambling).ProblemAsync(400);
        Assert.Contains("'domain' is 301 characters long", detail);
        api.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task ImportedTokenizer_GivesTheSameTokenIdsAsTheLibrary()
    {
        // With a labels file, as the README's import example does: a model without classes keeps the labels as given.
        var json = await Client.PostAsync("/api/v1/models/import", ImportForm("vqkd.pth", "tokenizer", config: VqkdHeads, labels: "a\nb\n"))
            .JsonAsync(HttpStatusCode.Created);
        var model = json.GetProperty("model");
        var id = model.Str("id");
        Assert.Equal("tokenizer", model.Str("kind"));
        Assert.Equal("vqkd", model.Str("architecture"));
        Assert.Equal(32, model.Int("codebookSize"));
        Assert.Equal(64, model.Int("imageSize"));

        byte[][] photos = { TestImages.Coffee, TestImages.Rocket, TestImages.Chelsea };
        var tokens = await Client.PostAsync($"/api/v1/tokens?model={id}", Http.Images(photos)).JsonAsync();
        Assert.Equal(id, tokens.Str("model"));
        Assert.Equal((4, 4, 32), (tokens.Int("rows"), tokens.Int("cols"), tokens.Int("codebookSize")));

        var config = CheckpointFixtures.Config<VqkdConfig>("vqkd");
        using var tokenizer = new VqkdTokenizer(config);
        VqkdCheckpoint.Load(tokenizer, CheckpointFixtures.Pth("vqkd"));
        tokenizer.eval();
        var transform = new EvalTransform(config.Encoder.ImgSize);
        for (var i = 0; i < photos.Length; i++)
        {
            long[] expected;
            using (var scope = NewDisposeScope())
            using (inference_mode())
            {
                using var image = ImageDecoder.Default.Decode(photos[i]);
                expected = tokenizer.GetCodebookIndices(transform.ToUnitPixelValues(image)).flatten().data<long>().ToArray();
            }
            var actual = tokens.Items("images")[i].GetProperty("tokens").EnumerateArray()
                .SelectMany(r => r.EnumerateArray().Select(v => (long)v.GetInt32())).ToArray();
            Assert.Equal(expected, actual);
        }
        api.Host.AssertNoServerErrors();
    }

    public static TheoryData<string, int> FailureCases => new()
    {
        { "classifier file imported as tokenizer", 422 },
        { "tokenizer file imported as classifier", 422 },
        { "garbage .pth", 422 },
        { "garbage .safetensors", 422 },
        { "empty file", 422 },
        { "config is not JSON", 400 },
        { "config is not an object", 400 },
        { "config with an impossible value", 400 },
        { "labels file with the wrong line count", 400 },
        { "empty labels file", 400 },
        { "no file part", 400 },
        { "no kind", 400 },
        { "unknown kind", 400 },
        { "makeDefault=perhaps", 400 },
        { "not multipart", 415 },
        { "file over MaxImportBytes", 413 },
        { "file over MaxImportBytes, streamed", 413 },
        { "TorchScript archive", 415 },
        { "safetensors with overlapping offsets", 422 },
        { "safetensors with a shape larger than the file", 422 },
        { "pth storage larger than its entry", 422 },
        { "pth calling os.system", 422 },
        { "config with absurd depth", 422 },
        { "config with absurd width and heads", 422 },
        { "config with absurd image size", 422 },
    };

    [Theory]
    [MemberData(nameof(FailureCases))]
    public async Task FailedImport_IsRefused_AndLeavesNothingBehind(string name, int status)
    {
        var before = await Client.GetAsync("/api/v1/models").JsonAsync();
        var modelsDir = Path.Combine(api.Host.DataDirectory, "models");
        var entries = Directory.Exists(modelsDir) ? Directory.GetFileSystemEntries(modelsDir).Order().ToList() : [];

        HttpContent content = name switch
        {
            "classifier file imported as tokenizer" => ImportForm("vit_cls.pth", "tokenizer"),
            "tokenizer file imported as classifier" => ImportForm("vqkd.pth", "classifier", config: VqkdHeads),
            "garbage .pth" => ImportForm(("model.pth", "definitely not a zip archive of tensors"u8.ToArray()), "classifier"),
            "garbage .safetensors" => ImportForm(("model.safetensors", new byte[] { 8, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x' }), "backbone"),
            "empty file" => ImportForm(("model.pth", []), "classifier"),
            "config is not JSON" => ImportForm("vit_cls.pth", "classifier", config: "{num_heads: 4"),
            "config is not an object" => ImportForm("vit_cls.pth", "classifier", config: "[4]"),
            "config with an impossible value" => ImportForm("vit_cls.pth", "classifier", config: """{"num_heads": 5}"""),
            "labels file with the wrong line count" => ImportForm("vit_cls.pth", "classifier", labels: "a\nb\nc\n"),
            "empty labels file" => ImportForm("vit_cls.pth", "classifier", labels: "\n"),
            "no file part" => Fields(("kind", "classifier")),
            "no kind" => ImportForm("vit_cls.pth", null),
            "unknown kind" => ImportForm("vit_cls.pth", "detector"),
            "makeDefault=perhaps" => ImportForm("vit_cls.pth", "classifier", makeDefault: "perhaps"),
            "not multipart" => Http.Raw(File.ReadAllBytes(CheckpointFixtures.Pth("vit_cls")), "application/octet-stream"),
            "file over MaxImportBytes" => ImportForm(("big.pth", new byte[ImportApi.MaxImportBytes + 1000]), "classifier"),
            "file over MaxImportBytes, streamed" => StreamedImport(new byte[ImportApi.MaxImportBytes + 1000]),
            "TorchScript archive" => ImportForm(("ViT-B-16.pt", HostileCheckpoints.TorchScript()), "teacher"),
            "safetensors with overlapping offsets" => ImportForm(("m.safetensors", HostileCheckpoints.TwoTensors("[0,16]", "[0,16]", 16)), "backbone"),
            "safetensors with a shape larger than the file" => ImportForm(("m.safetensors",
                HostileCheckpoints.Safetensors("""{"a":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,16]}}""", 16)), "backbone"),
            "pth storage larger than its entry" => ImportForm(("m.pth", HostileCheckpoints.Pth(4, 1_000_000, entryBytes: 16)), "backbone"),
            "pth calling os.system" => ImportForm(("m.pth", HostileCheckpoints.Pth(4, 4, extraGlobal: "os\nsystem")), "backbone"),
            "config with absurd depth" => ImportForm("vit_cls.pth", "classifier", config: """{"depth": 100000}"""),
            "config with absurd width and heads" => ImportForm("vit_cls.pth", "classifier", config: """{"embed_dim": 1000000, "num_heads": 100000}"""),
            "config with absurd image size" => ImportForm("vit_cls.pth", "classifier", config: """{"img_size": 1000000}"""),
            _ => throw new ArgumentException(name),
        };
        using (content)
        {
            var detail = await Client.PostAsync("/api/v1/models/import", content).ProblemAsync(status);
            Assert.DoesNotContain("unexpected error", detail, StringComparison.OrdinalIgnoreCase);
        }

        using (var live = await Client.GetAsync("/health/live")) Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var after = await Client.GetAsync("/api/v1/models").JsonAsync();
        Assert.Equal(before.GetRawText(), after.GetRawText());
        Assert.Equal(entries, Directory.Exists(modelsDir) ? Directory.GetFileSystemEntries(modelsDir).Order().ToList() : []);
        Assert.Empty(api.Host.TempFiles());
        api.Host.AssertNoServerErrors();
    }

    [Fact]
    public async Task Registry_ListGetSetDefaultDelete()
    {
        var a = (await Client.PostAsync("/api/v1/models/import", ImportForm("vit_cls.pth", "classifier", name: "first", makeDefault: "true"))
            .JsonAsync(HttpStatusCode.Created)).GetProperty("model");
        var b = (await Client.PostAsync("/api/v1/models/import", ImportForm("vit_cls.pth", "classifier", name: "second"))
            .JsonAsync(HttpStatusCode.Created)).GetProperty("model");
        var (idA, idB) = (a.Str("id"), b.Str("id"));
        Assert.True(a.GetProperty("isDefault").GetBoolean());
        Assert.False(b.GetProperty("isDefault").GetBoolean());

        var list = (await Client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray().ToList();
        var listed = list.Single(m => m.Str("id") == idA);
        foreach (var field in new[] { "id", "kind", "architecture", "imageSize", "patchSize", "embedDim", "depth", "classes", "source", "createdAt", "isDefault" })
            Assert.True(listed.TryGetProperty(field, out _), $"models list entry has no {field}");
        Assert.True(DateTimeOffset.TryParse(listed.Str("createdAt"), out _));
        Assert.Contains(list, m => m.Str("id") == idB);

        var one = await Client.GetAsync($"/api/v1/models/{idB}").JsonAsync();
        Assert.Equal("second", one.Str("name"));
        Assert.NotEmpty(one.GetProperty("lineage").Items("notes"));

        // Switch the default to B; A can then go, B cannot.
        var switched = await Client.PostAsync($"/api/v1/models/{idB}/default", null).JsonAsync();
        Assert.True(switched.GetProperty("isDefault").GetBoolean());
        Assert.False((await Client.GetAsync($"/api/v1/models/{idA}").JsonAsync()).GetProperty("isDefault").GetBoolean());
        var info = await Client.GetAsync("/api/v1/info").JsonAsync();
        Assert.Equal(idB, info.GetProperty("defaultModels").Str("classifier"));
        var classify = await Client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage)).JsonAsync();
        Assert.Equal(idB, classify.Str("model"));

        var conflict = await Client.DeleteAsync($"/api/v1/models/{idB}").ProblemAsync(409);
        Assert.Contains(idB, conflict);

        // Load A so deleting it also has to unload it.
        await Client.PostAsync($"/api/v1/classify?model={idA}", Http.Images(SeededApi.SmallImage)).JsonAsync();
        using (var deleted = await Client.DeleteAsync($"/api/v1/models/{idA}"))
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        await Client.GetAsync($"/api/v1/models/{idA}").ProblemAsync(404);
        await Client.DeleteAsync($"/api/v1/models/{idA}").ProblemAsync(404);
        await Client.PostAsync($"/api/v1/classify?model={idA}", Http.Images(SeededApi.SmallImage)).ProblemAsync(404);
        await Client.PostAsync("/api/v1/models/no-such-model/default", null).ProblemAsync(404);
        Assert.DoesNotContain((await Client.GetAsync("/api/v1/models").JsonAsync()).EnumerateArray(), m => m.Str("id") == idA);
        Assert.DoesNotContain(Directory.GetFileSystemEntries(Path.Combine(api.Host.DataDirectory, "models")),
            p => Path.GetFileName(p).Contains(idA));

        // B still serves.
        Assert.Equal(idB, (await Client.PostAsync("/api/v1/classify", Http.Images(SeededApi.SmallImage)).JsonAsync()).Str("model"));
        api.Host.AssertNoServerErrors();
    }

    private static MultipartFormDataContent ImportForm(string fixture, string? kind, string? name = null, string? labels = null,
        string? config = null, string? makeDefault = null) =>
        ImportForm((fixture, File.ReadAllBytes(Path.Combine(FixturePaths.ReferenceDir, fixture))), kind, name, labels, config, makeDefault);

    private static MultipartFormDataContent ImportForm((string FileName, byte[] Bytes) file, string? kind, string? name = null,
        string? labels = null, string? config = null, string? makeDefault = null)
    {
        var form = Fields(("kind", kind), ("name", name), ("config", config), ("makeDefault", makeDefault));
        form.Add(Http.Part(file.Bytes, "application/octet-stream"), "file", file.FileName);
        if (labels is not null) form.Add(Http.Part(System.Text.Encoding.UTF8.GetBytes(labels), "text/plain"), "labels", "labels.txt");
        return form;
    }

    /// <summary>An import whose length is not announced (chunked): the limit must hold while reading.</summary>
    private static MultipartFormDataContent StreamedImport(byte[] file)
    {
        var form = Fields(("kind", "classifier"));
        form.Add(Http.Streamed(file, "application/octet-stream"), "file", "big.pth");
        return form;
    }

    private static MultipartFormDataContent Fields(params (string Name, string? Value)[] fields)
    {
        var form = new MultipartFormDataContent();
        foreach (var (n, v) in fields)
            if (v is not null) form.Add(new StringContent(v), n);
        return form;
    }
}
