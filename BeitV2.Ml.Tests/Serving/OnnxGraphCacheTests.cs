using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Serving;
using Onnx;
using static BeitV2.Ml.Tests.Serving.ServingSupport;

namespace BeitV2.Ml.Tests.Serving;

/// <summary>
/// The graph cache of the ONNX engine: a package's graph is exported once and reused; new weights get a new graph; a
/// damaged graph is rebuilt, never served; an export that fails leaves nothing behind and TorchSharp serves. Exports are
/// counted through the exporter seam (<see cref="CountingExporter"/>).
/// </summary>
public sealed class OnnxGraphCacheTests
{
    private const int Size = 32;   // VitConfig.Micro

    private static string NewPackage(TempDirectory dir, long seed = 7)
    {
        var package = dir.Combine("model");
        SavePackage(ModelKind.VitCls, VitConfig.Micro(numClasses: 5), package, seed);
        return package;
    }

    private static string[] Entries(string package)
    {
        var root = Path.Combine(package, OnnxGraphCache.FolderName);
        return Directory.Exists(root) ? Directory.GetDirectories(root).Select(d => Path.GetFileName(d)).Order().ToArray() : [];
    }

    /// <summary>Classify answers of the model in <paramref name="package"/> on fixed images, by the given engine.</summary>
    private static ClassProbabilities[] Answers(ServedModel model) => model.Classify(ImageBatch.Of(Size, Images(Size, 3, seed: 11)));

    private static ClassProbabilities[] TorchAnswers(string package)
    {
        using var torch = ServedModelLoader.Load(package, Options(ServingEngine.Torch)).Model;
        return Answers(torch);
    }

    private static void SameAnswers(ClassProbabilities[] want, ClassProbabilities[] got, string what)
    {
        Assert.Equal(want.Length, got.Length);
        for (var i = 0; i < want.Length; i++) Close(want[i].Probabilities, got[i].Probabilities, $"{what}, image {i}");
    }

    [Fact]
    public void FirstLoadExports_LaterLoadsUseTheCachedGraph_WithoutExporting()
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir);
        var exporter = new CountingExporter();

        var first = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
        ClassProbabilities[] exported;
        using (first.Model) exported = Answers(first.Model);
        Assert.Equal(ServingEngine.Onnx, first.Engine);
        Assert.True(first.Graph!.Built);
        Assert.Null(first.Graph.Rebuilt);
        Assert.Equal(1, exporter.Count);
        var entry = Assert.Single(Entries(package));
        Assert.StartsWith("fp32-", entry);
        var folder = Path.Combine(package, OnnxGraphCache.FolderName, entry);
        Assert.Equal([OnnxGraphCache.SidecarFile, OnnxGraphCache.ModelFile, OnnxGraphCache.DataFile],
            Directory.GetFiles(folder).Select(f => Path.GetFileName(f)).Order().ToArray());
        // The weights live in the data file: the graph file holds the graph and the small constants only.
        Assert.True(new FileInfo(Path.Combine(folder, OnnxGraphCache.DataFile)).Length > new FileInfo(Path.Combine(folder, OnnxGraphCache.ModelFile)).Length);

        for (var load = 0; load < 2; load++)
        {
            var again = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
            using var model = again.Model;
            Assert.Equal(ServingEngine.Onnx, again.Engine);
            Assert.False(again.Graph!.Built);
            Assert.Equal(Path.Combine(folder, OnnxGraphCache.ModelFile), again.Graph.ModelPath);
            Assert.Equal(1, exporter.Count);
            var cached = Answers(model);
            for (var i = 0; i < cached.Length; i++) Assert.Equal(exported[i].Probabilities, cached[i].Probabilities); // the same graph: the same bits
        }
        SameAnswers(TorchAnswers(package), exported, "onnx vs torch");
    }

    [Fact]
    public void NewWeights_InTheSameFolder_GetANewGraph_AndTheOldOneIsRemoved()
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir, seed: 7);
        var exporter = new CountingExporter();
        using (ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter)).Model) { }
        var before = Assert.Single(Entries(package));

        // Other weights written over the package's files, the graph cache left in place (as a copy or restore would).
        var other = NewPackage(new TempDirectory(), seed: 8);
        foreach (var file in new[] { "weights.safetensors", ModelPackage.ManifestFile }) File.Copy(Path.Combine(other, file), Path.Combine(package, file), overwrite: true);

        var load = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
        using var model = load.Model;
        Assert.True(load.Graph!.Built);
        Assert.Equal(2, exporter.Count);
        var after = Assert.Single(Entries(package));
        Assert.NotEqual(before, after);
        SameAnswers(TorchAnswers(package), Answers(model), "the new weights' graph vs torch");
    }

    public static TheoryData<string, string> Damage() => new()
    {
        { "flip a byte of the weights", "does not match its SHA-256" },
        { "truncate the weights", "truncated" },
        { "truncate the graph", "truncated" },
        { "delete the sidecar", "missing or unreadable" },
        { "garble the sidecar", "missing or unreadable" },
        { "delete the weights", "is missing" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void DamagedCachedGraph_IsRebuilt_NeverServed(string damage, string reason)
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir);
        var exporter = new CountingExporter();
        using (ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter)).Model) { }
        var folder = Path.Combine(package, OnnxGraphCache.FolderName, Assert.Single(Entries(package)));
        var data = Path.Combine(folder, OnnxGraphCache.DataFile);
        var graph = Path.Combine(folder, OnnxGraphCache.ModelFile);
        var sidecar = Path.Combine(folder, OnnxGraphCache.SidecarFile);
        switch (damage)
        {
            case "flip a byte of the weights":
                // A weight, not padding: the first initializer starts at offset 0.
                var bytes = File.ReadAllBytes(data);
                bytes[2] ^= 0x40;
                File.WriteAllBytes(data, bytes);
                break;
            case "truncate the weights": Truncate(data); break;
            case "truncate the graph": Truncate(graph); break;
            case "delete the sidecar": File.Delete(sidecar); break;
            case "garble the sidecar": File.WriteAllText(sidecar, "{ not json"); break;
            case "delete the weights": File.Delete(data); break;
        }

        var load = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
        using var model = load.Model;
        Assert.Equal(ServingEngine.Onnx, load.Engine);
        Assert.True(load.Graph!.Built);
        Assert.Contains(reason, load.Graph.Rebuilt);
        Assert.Equal(2, exporter.Count);
        Assert.Single(Entries(package));
        Assert.Null(OnnxGraphCache.Verify(folder, KeyOf(package), out _));
        SameAnswers(TorchAnswers(package), Answers(model), $"after '{damage}'");
    }

    private static void Truncate(string path)
    {
        using var f = new FileStream(path, FileMode.Open);
        f.SetLength(f.Length / 2);
    }

    private static OnnxGraphKey KeyOf(string package)
    {
        var manifest = ModelPackage.ReadManifest(package);
        return new OnnxGraphKey(manifest.Kind, manifest.Config.GetRawText(), DurableFiles.Sha256(Path.Combine(package, manifest.Weights)), OnnxPrecision.Fp32);
    }

    [Fact]
    public void ExportFailure_IsReported_TorchServes_AndNothingIsLeftBehind()
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir);
        var exporter = new CountingExporter { Fail = new InvalidOperationException("the exporter broke (test)") };

        var load = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
        using var model = load.Model;
        Assert.Equal(ServingEngine.Torch, model.Engine);
        Assert.Same(exporter.Fail, load.Error);
        Assert.Contains("the exporter broke (test)", load.Fallback);
        Assert.Null(load.Graph);
        Assert.Empty(Entries(package));   // no entry, no staging folder
        SameAnswers(TorchAnswers(package), Answers(model), "the fallback");

        // Once the exporter works again, the next load serves the graph.
        exporter.Fail = null;
        var next = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
        using (next.Model) Assert.Equal(ServingEngine.Onnx, next.Engine);
    }

    [Fact]
    public void AGraphOnnxRuntimeRefuses_FallsBackToTorch()
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir);
        var exporter = new BrokenGraphExporter();
        var load = ServedModelLoader.Load(package, Options(ServingEngine.Onnx, exporter));
        using var model = load.Model;
        Assert.Equal(ServingEngine.Torch, model.Engine);
        Assert.IsAssignableFrom<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(load.Error);
        Assert.Contains("the ONNX path failed", load.Fallback);
    }

    /// <summary>Writes the real graph with one node's operator renamed to one no runtime has.</summary>
    private sealed class BrokenGraphExporter : OnnxExporter
    {
        public override ModelProto Export(BeitV2.Ml.Catalog.ModelEntry entry, TorchSharp.torch.nn.Module module, OnnxExportOptions options)
        {
            var graph = base.Export(entry, module, options);
            graph.Graph.Node[0].OpType = "NoSuchOperator";
            return graph;
        }
    }

    [Fact]
    public void LeftoversOfACrashedWrite_AreRemoved_OnlyOnceTheyAreOld()
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir);
        using (ServedModelLoader.Load(package, Options(ServingEngine.Onnx)).Model) { }
        var root = Path.Combine(package, OnnxGraphCache.FolderName);
        // What a crash mid-export leaves: a staging folder. An old one is garbage; a young one may be another server's export.
        var old = Directory.CreateDirectory(Path.Combine(root, ".tmp-crashed"));
        File.WriteAllText(Path.Combine(old.FullName, OnnxGraphCache.ModelFile), "half a graph");
        Directory.SetLastWriteTimeUtc(old.FullName, DateTime.UtcNow.AddDays(-1));
        var young = Directory.CreateDirectory(Path.Combine(root, ".tmp-in-progress"));

        using (ServedModelLoader.Load(package, Options(ServingEngine.Onnx)).Model) { }   // a cache hit
        Assert.False(Directory.Exists(old.FullName));
        Assert.True(Directory.Exists(young.FullName));
    }

    [Fact]
    public void EachPrecision_HasItsOwnEntry_AndBothStay()
    {
        using var dir = new TempDirectory();
        var package = NewPackage(dir);
        var key = KeyOf(package);
        Assert.NotEqual(key.Folder, (key with { Precision = OnnxPrecision.Int8 }).Folder);
        Assert.StartsWith("int8-", (key with { Precision = OnnxPrecision.Int8 }).Folder);
        Assert.NotEqual(key.Folder, (key with { Config = key.Config + " " }).Folder);

        // Written through the cache directly: serving int8 is the int8 pass's to test; the cache only keys and keeps.
        var exports = 0;
        ModelProto Export()
        {
            exports++;
            var loaded = ModelPackage.Load(package);
            using (loaded) return OnnxExporter.Default.Export(BeitV2.Ml.Catalog.ModelCatalog.Default[loaded.Kind], loaded.Module, OnnxExportOptions.Serving);
        }
        OnnxGraphCache.GetOrBuild(package, key, Export);
        OnnxGraphCache.GetOrBuild(package, key with { Precision = OnnxPrecision.Int8 }, Export);
        Assert.False(OnnxGraphCache.GetOrBuild(package, key, Export).Built);
        Assert.Equal(2, exports);
        Assert.Equal(2, Entries(package).Length);
    }
}
