using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Serving;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>The model catalogue: one entry per kind, and everything done by kind goes through it.</summary>
public sealed class ModelCatalogTests
{
    private static readonly string[] LibraryKinds = ["vit_cls", "mim", "vqkd", "clip_teacher", "dino_teacher", "conv_teacher", "segmenter"];

    /// <summary>Test-sized configs: the catalogue's "micro" preset where there is one, else a tiny model of the kind.</summary>
    private static object TinyConfig(ModelEntry entry) => entry.Kind switch
    {
        ModelKind.ClipTeacher => new ClipVisionConfig { InputResolution = 32, PatchSize = 8, Width = 32, Layers = 2, Heads = 2, OutputDim = 16 },
        ModelKind.DinoTeacher => new DinoConfig { ImgSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2 },
        ModelKind.Vqkd => VqkdConfig.Micro() with { QuantizeKmeansInit = false },
        _ => entry.Preset("micro"),
    };

    [Fact]
    public void TheCatalogueListsExactlyTheLibrarysKinds_WithTheirManifestNames()
    {
        Assert.Equal(LibraryKinds, ModelCatalog.Default.Kinds);
        Assert.Equal(LibraryKinds, ModelKind.All);
        Assert.Equal(LibraryKinds, ModelCatalog.Default.Entries.Select(e => e.Kind));
    }

    [Fact]
    public void EveryKindRoundTripsThroughAPackage_AndDescribesItselfAsBefore()
    {
        using var tmp = new TempDirectory();
        foreach (var entry in ModelCatalog.Default.Entries)
        {
            using var scope = NewDisposeScope();
            manual_seed(3);
            var config = TinyConfig(entry);
            using var model = entry.Create(config);
            Assert.True(entry.Holds(model));
            Assert.Same(entry, ModelCatalog.Default.EntryOf(model));
            var dir = tmp.Combine(entry.Kind);
            ModelPackage.Save(model, dir);

            Assert.Equal(entry.Kind, ModelPackage.ReadManifest(dir).Kind);
            using var loaded = ModelPackage.Load(dir);
            Assert.Equal(entry.Kind, loaded.Kind);
            Assert.IsType(entry.ModuleType, loaded.Module);
            Assert.Equal(entry.WriteConfig(config).GetRawText(), entry.WriteConfig(entry.ConfigOf(loaded.Module)).GetRawText());
            Assert.Equal(entry.Describe(config), entry.Describe(entry.ReadConfig(loaded.Manifest.Config)));
            var want = model.state_dict();
            var got = loaded.Module.state_dict();
            Assert.Equal(want.Keys.Order(), got.Keys.Order());
            foreach (var (key, value) in got)
                Assert.True(value.Equals(want[key]), $"{entry.Kind}: {key} differs after the round trip");
        }
    }

    [Fact]
    public void DescriptionsAreThoseTheApiListed()
    {
        ModelShape Shape(object config) => ModelCatalog.Default.Entries.Single(e => e.ConfigType == config.GetType()).Describe(config);
        Assert.Equal(new ModelShape("beit-vit", 224, 16, 768, 12, null, 1000), Shape(VitConfig.Base()));
        Assert.Equal(new ModelShape("beit-vit", 224, 16, 768, 12, null, null), Shape(VitConfig.Base(numClasses: 0)));
        Assert.Equal(new ModelShape("beitv2-mim", 224, 16, 768, 12, 8192, null), Shape(MimConfig.Base()));
        Assert.Equal(new ModelShape("vqkd", 32, 8, 32, 2, 64, null), Shape(VqkdConfig.Micro()));
        Assert.Equal(new ModelShape("clip-vit", 224, 16, 768, 12, null, null), Shape(ClipVisionConfig.ViTB16()));
        Assert.Equal(new ModelShape("dino-vit", 224, 16, 768, 12, null, null), Shape(DinoConfig.ViTB16()));
        Assert.Equal(new ModelShape("beit-upernet", 512, 16, 768, 12, null, 150),
            Shape(BeitV2.Ml.Models.Segmentation.SegmentationConfig.Base()));
    }

    [Fact]
    public void OperationsFollowTheConfig()
    {
        var catalog = ModelCatalog.Default;
        Assert.Equal(new[] { Operation.Features, Operation.Classify },
            catalog[ModelKind.VitCls].Operations(VitConfig.Micro(numClasses: 10)).Order());
        Assert.Equal(new[] { Operation.Features }, catalog[ModelKind.VitCls].Operations(VitConfig.Micro(numClasses: 0)));
        Assert.Equal(new[] { Operation.Features }, catalog[ModelKind.Mim].Operations(MimConfig.Micro()));
        Assert.Equal(new[] { Operation.Tokens }, catalog[ModelKind.Vqkd].Operations(VqkdConfig.Micro()));
        Assert.Equal(new[] { Operation.Segment }, catalog[ModelKind.Segmenter].Operations(catalog[ModelKind.Segmenter].Preset("micro")));
        Assert.Empty(catalog[ModelKind.ClipTeacher].Operations(ClipVisionConfig.ViTB16()));
        Assert.Empty(catalog[ModelKind.DinoTeacher].Operations(DinoConfig.ViTB16()));

        using var headless = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0));
        Assert.Equal(new[] { Operation.Features }, catalog.OperationsOf(headless));
        using var probe = nn.Linear(4, 2);
        Assert.Null(catalog.EntryOf(probe));
        Assert.Contains("not a BeitV2 model", Assert.Throws<ArgumentException>(() => catalog.OperationsOf(probe)).Message);
    }

    [Fact]
    public void ServedModelsServeWhatTheirEntrySays()
    {
        // The entry's operations (what the API lists and admits) and the serving wrapper's must agree for every config.
        var catalog = ModelCatalog.Default;
        var configs = new (string Kind, object Config)[]
        {
            (ModelKind.VitCls, VitConfig.Micro(numClasses: 10)), (ModelKind.VitCls, VitConfig.Micro(numClasses: 0)),
            (ModelKind.Mim, MimConfig.Micro()),
            // Serving refuses a codebook that k-means never initialised; a codebook without k-means init is ready.
            (ModelKind.Vqkd, VqkdConfig.Micro() with { QuantizeKmeansInit = false }),
            (ModelKind.Segmenter, catalog[ModelKind.Segmenter].Preset("micro")),
        };
        foreach (var (kind, config) in configs)
        {
            var entry = catalog[kind];
            var module = entry.Create(config); // the served model owns and disposes it
            var preprocessing = entry.DefaultPreprocessing(config);
            Assert.NotNull(preprocessing);
            using var served = entry.Serve(module, preprocessing!);
            Assert.NotNull(served);
            Assert.Equal(entry.Operations(config).Order(), served!.Operations.Select(o => o.Operation).Order());
        }
        foreach (var kind in new[] { ModelKind.ClipTeacher, ModelKind.DinoTeacher })
            Assert.Null(catalog[kind].DefaultPreprocessing(catalog[kind].Preset("base")));
    }

    [Fact]
    public void PresetsAreTheConfigsOfToday()
    {
        var catalog = ModelCatalog.Default;
        string Json(string kind, object config) => catalog[kind].WriteConfig(config).GetRawText();
        Assert.Equal(Json(ModelKind.VitCls, VitConfig.Base()), Json(ModelKind.VitCls, catalog[ModelKind.VitCls].Preset("base")));
        Assert.Equal(Json(ModelKind.VitCls, VitConfig.Micro()), Json(ModelKind.VitCls, catalog[ModelKind.VitCls].Preset("micro")));
        Assert.Equal(Json(ModelKind.Mim, MimConfig.Tiny()), Json(ModelKind.Mim, catalog[ModelKind.Mim].Preset("tiny")));
        Assert.Equal(new[] { "micro", "small", "tiny", "base", "large" }, catalog[ModelKind.VitCls].PresetNames);
        Assert.All(catalog.Entries, e => Assert.NotEmpty(e.PresetNames));
        Assert.All(catalog.Entries, e => Assert.All(e.PresetNames, n => Assert.IsType(e.ConfigType, e.Preset(n))));
        Assert.Contains("no 'huge' preset", Assert.Throws<KeyNotFoundException>(() => catalog[ModelKind.VitCls].Preset("huge")).Message);
    }

    [Fact]
    public void AnUnknownKindIsRefusedWithTheKnownOnes()
    {
        var e = Assert.Throws<CheckpointException>(() => ModelCatalog.Default["unicorn"]);
        Assert.Equal("Unknown model kind 'unicorn' (expected one of vit_cls, mim, vqkd, clip_teacher, dino_teacher, conv_teacher, segmenter).", e.Message);
        Assert.False(ModelCatalog.Default.TryGet("VIT_CLS", out _));
        Assert.Throws<ArgumentException>(() => new ModelCatalog([.. ModelCatalog.BuiltIn(), ModelCatalog.BuiltIn()[0]]));
    }

    // ---------------------------------------------------------------- adding a kind

    public sealed record ToyConfig
    {
        public int Width { get; init; } = 4;
    }

    public sealed class ToyModel : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear proj;

        public ToyModel(ToyConfig config) : base(nameof(ToyModel))
        {
            Config = config;
            proj = nn.Linear(config.Width, config.Width);
            RegisterComponents();
        }

        public ToyConfig Config { get; }
        public override Tensor forward(Tensor x) => proj.forward(x);
    }

    /// <summary>The whole of a new kind: one entry.</summary>
    private static readonly ModelEntry Toy = new ModelEntry<ToyConfig, ToyModel>("toy")
    {
        New = c => new ToyModel(c),
        ConfigOfModel = m => m.Config,
        LoadWeights = (m, sd) => StateDictLoader.Load(m, sd, "toy model"),
        Describer = c => new ModelShape("toy-linear", 1, 1, c.Width, 1, null, null),
        Serves = _ => new HashSet<Operation> { Operation.Features },
        Presets = new Dictionary<string, ToyConfig> { ["micro"] = new() { Width = 3 } },
    };

    [Fact]
    public void AddingAKindIsOneEntry_ThatSavesLoadsAndDescribes()
    {
        using var tmp = new TempDirectory();
        var catalog = new ModelCatalog([.. ModelCatalog.BuiltIn(), Toy]);
        Assert.Equal(LibraryKinds.Append("toy"), catalog.Kinds);

        manual_seed(5);
        using var model = (ToyModel)catalog["toy"].Create(catalog["toy"].Preset("micro"));
        var dir = tmp.Combine("toy");
        ModelPackage.Save(model, dir, labels: null, metadata: null, catalog);
        Assert.Equal("toy", ModelPackage.ReadManifest(dir).Kind);
        Assert.Equal(3, ModelPackage.ReadManifest(dir).Config.GetProperty("width").GetInt32());

        using var loaded = ModelPackage.Load(dir, catalog: catalog);
        var toy = loaded.As<ToyModel>();
        Assert.Equal(new ToyConfig { Width = 3 }, toy.Config);
        using var x = randn(2, 3);
        Assert.True(toy.forward(x).Equals(model.forward(x)));
        Assert.Equal(new ModelShape("toy-linear", 1, 1, 3, 1, null, null), catalog["toy"].Describe(toy.Config));
        Assert.Equal(new[] { Operation.Features }, catalog.OperationsOf(toy));

        // The library's own catalogue does not know it: the same refusal as for any unknown kind.
        Assert.Contains("Unknown model kind 'toy'", Assert.Throws<CheckpointException>(() => ModelPackage.Load(dir)).Message);
        Assert.Throws<ArgumentException>(() => ModelPackage.Save(model, tmp.Combine("again")));
    }
}
