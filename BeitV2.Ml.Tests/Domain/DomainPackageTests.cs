using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Domain;
using BeitV2.Ml.Models;
using BeitV2.Ml.Serving;
using static BeitV2.Ml.Tests.Serving.ServingSupport;

namespace BeitV2.Ml.Tests.Domain;

/// <summary>The domain and out-of-domain fit in a package: written beside the weights, read back, checked; and the same score on both engines.</summary>
public sealed class DomainPackageTests
{
    private static DomainFit RandomFit(int dim, int seed)
    {
        var r = new Random(seed);
        float[][] Rows(int n) => Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, dim).Select(_ => (float)r.NextDouble()).ToArray()).ToArray();
        return DomainFit.Fit(Rows(60), Enumerable.Range(0, 60).Select(i => i % 3).ToList(), Rows(20),
            new DomainFitInfo(DomainFitInfo.MeanFeature, "random", "train", "test", "torch"));
    }

    [Fact]
    public void APackageWithoutADomain_ReadsAsUnknown_AndHasNoFit()
    {
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        SavePackage(ModelKind.VitCls, VitConfig.Micro(numClasses: 3), package);
        var manifest = ModelPackage.ReadManifest(package);
        Assert.Null(manifest.Domain);
        Assert.Equal(ModelDomain.Unknown, manifest.DomainOrUnknown.Dataset);
        Assert.Equal(ModelDomain.Unknown, manifest.DomainOrUnknown.Description);
        Assert.Null(ModelPackage.ReadDomainFit(package, manifest));
        Assert.DoesNotContain("domain", File.ReadAllText(Path.Combine(package, ModelPackage.ManifestFile)));
    }

    [Fact]
    public void DomainAndFit_RoundTrip_WithoutTouchingTheWeights()
    {
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        SavePackage(ModelKind.VitCls, VitConfig.Micro(numClasses: 3), package);
        var before = ModelPackage.ReadManifest(package);
        var weights = File.ReadAllBytes(Path.Combine(package, before.Weights));
        var fit = RandomFit(8, seed: 1);
        var domain = new ModelDomain
        {
            Dataset = "Shapes", DatasetId = "shapes", Classes = ["a", "b", "c"], InputKind = "drawings", InputSize = 32, Description = "one line",
            Quality = new ModelQuality("accuracy", 0.9, "test", "Shapes", 100),
        };
        ModelPackage.WriteDomain(package, domain, fit);

        var after = ModelPackage.ReadManifest(package);
        Assert.Equal(before.WeightsSha256, after.WeightsSha256);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(package, after.Weights)));
        var d = after.Domain!;
        Assert.Equal(("Shapes", "shapes", "drawings", 32, "one line"), (d.Dataset, d.DatasetId, d.InputKind, d.InputSize, d.Description));
        Assert.Equal(["a", "b", "c"], d.Classes!);
        Assert.Equal(domain.Quality, d.Quality);
        Assert.Equal(new DomainFitReference(DomainFitFile.FileName, d.OutOfDomain!.Sha256, "mean", 60, 20, 99), d.OutOfDomain);

        var read = ModelPackage.ReadDomainFit(package, after)!;
        var probe = new float[] { 0.1f, 0.9f, 0.5f, 0.3f, 2f, -1f, 0.4f, 0.6f };
        // The file keeps float32 matrices: the same distance to a few parts in a million.
        Assert.Equal(fit.Distance(probe), read.Distance(probe), fit.Distance(probe) * 1e-5);
        Assert.Equal(fit.Calibration.ThresholdDistance, read.Calibration.ThresholdDistance);
        Assert.Equal(fit.Info, read.Info);
        // The model still loads (its weights are checked against the manifest's SHA-256).
        using var loaded = ModelPackage.Load(package);

        // A new domain without a fit keeps the fit the package has.
        ModelPackage.WriteDomain(package, domain with { Description = "another line" });
        Assert.Equal(d.OutOfDomain, ModelPackage.ReadManifest(package).Domain!.OutOfDomain);
        Assert.False(Directory.EnumerateFiles(package, ".*").Any(), "a staging file was left behind");
    }

    [Fact]
    public void AChangedFitFile_IsRefused()
    {
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        SavePackage(ModelKind.VitCls, VitConfig.Micro(numClasses: 3), package);
        ModelPackage.WriteDomain(package, new ModelDomain { Dataset = "x" }, RandomFit(4, seed: 2));
        File.AppendAllText(Path.Combine(package, DomainFitFile.FileName), " ");
        var e = Assert.Throws<CheckpointException>(() => ModelPackage.ReadDomainFit(package, ModelPackage.ReadManifest(package)));
        Assert.Contains("does not match the SHA-256", e.Message);
    }

    public static TheoryData<string> ScoredKinds() => new("vit classifier, mean pooling", "vit classifier, [CLS] pooling", "vit backbone", "mim", "segmenter");

    /// <summary>Both engines give each image the same pooled feature, so one fit scores an image alike whichever engine serves it.</summary>
    [Theory]
    [MemberData(nameof(ScoredKinds))]
    public void OnnxAndTorch_GiveTheSameOutOfDomainScore(string name)
    {
        var (_, kind, config) = Servable().Single(s => s.Name == name);
        using var dir = new TempDirectory();
        var package = dir.Combine("model");
        SavePackage(kind, config(), package);
        using var torch = ServedModelLoader.Load(package, Options(ServingEngine.Torch)).Model;
        using var onnx = ServedModelLoader.Load(package, Options(ServingEngine.Onnx)).Model;
        Assert.Equal(ServingEngine.Onnx, onnx.Engine);
        var size = torch.Preprocessing.InputSize;

        float[][] Features(ServedModel model, float[][] images)
        {
            var batch = ImageBatch.Of(size, images);
            object[] answers = model.Operations[0].Operation switch
            {
                Operation.Segment => model.Segment(batch),
                _ when model.Operations.Any(o => o.Operation == Operation.Classify) => model.Classify(batch),
                _ => model.Features(batch),
            };
            return answers.Select(a => a switch
            {
                ClassProbabilities p => p.Feature!,
                ClassMap m => m.Feature!,
                FeaturesResult f => f.Mean,
                _ => throw new InvalidOperationException(),
            }).ToArray();
        }

        var train = Images(size, 48, seed: 5);
        var fitFeatures = train.Chunk(8).SelectMany(c => Features(torch, c)).ToList();
        var fit = DomainFit.Fit(fitFeatures[..32], null, fitFeatures[32..], new DomainFitInfo("mean", "random", "train", "train", "torch"));
        var probe = Images(size, 6, seed: 9);
        var viaTorch = Features(torch, probe).Select(f => fit.Distance(f)).ToArray();
        var viaOnnx = Features(onnx, probe).Select(f => fit.Distance(f)).ToArray();
        for (var i = 0; i < probe.Length; i++)
            Assert.True(Math.Abs(viaTorch[i] - viaOnnx[i]) <= 1e-3 * Math.Max(1, viaTorch[i]), $"{name}, image {i}: {viaTorch[i]} (torch) vs {viaOnnx[i]} (onnx)");
    }
}
