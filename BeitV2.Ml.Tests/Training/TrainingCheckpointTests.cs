using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

[Collection(TrainingCollection.Name)]
public class TrainingCheckpointTests
{
    private static SyntheticData Data() => new(2, 1, (g, _) => SyntheticData.Stripes(g, 4, 32));

    [Fact]
    public void Save_ReplacesAtomically_AndRestoresGeneratorState()
    {
        using var dir = new TempDirectory();
        TrainerBase.SeedEverything(1);
        using var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 2));
        var path = dir.Combine("ckpt");
        var state = new TrainingCheckpointState { Stage = "finetune", Step = 5, StepsPerEpoch = 2, PlannedSteps = 10, Seed = 3 };
        TrainingCheckpoint.Save(path, model, null, state);
        using var expected = rand(4);
        TrainingCheckpoint.Save(path, model, null, state with { Step = 7 }); // replaces the folder
        Assert.Equal(7, TrainingCheckpoint.ReadState(path).Step);
        Assert.DoesNotContain(Directory.GetDirectories(dir.Path), d => Path.GetFileName(d).StartsWith('.')); // no staging or old folder left
        foreach (var f in new[] { TrainingCheckpoint.WeightsFile, TrainingCheckpoint.RngFile, TrainingCheckpoint.StateFile, ModelPackage.ManifestFile })
            Assert.True(File.Exists(Path.Combine(path, f)), f);

        // The generator state saved at the second save is restored: the next draws repeat.
        using var after = rand(4);
        TrainingCheckpoint.Load(path, model, null);
        using var again = rand(4);
        Assert.True(after.equal(again).all().item<bool>());
    }

    [Fact]
    public void ACheckpointsManifest_IsThePackageManifestOfItsModel()
    {
        // A finished job's checkpoint is registered and served like a package: same kind, config and preprocessing.
        using var dir = new TempDirectory();
        using var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 2));
        var checkpoint = dir.Combine("ckpt");
        var package = dir.Combine("package");
        TrainingCheckpoint.Save(checkpoint, model, null, new TrainingCheckpointState { Stage = "finetune", Step = 1, StepsPerEpoch = 1, PlannedSteps = 1 });
        ModelPackage.Save(model, package);
        var fromCheckpoint = ModelPackage.ReadManifest(checkpoint);
        var fromPackage = ModelPackage.ReadManifest(package);
        Assert.Equal(fromPackage.Kind, fromCheckpoint.Kind);
        Assert.Equal(fromPackage.Config.GetRawText(), fromCheckpoint.Config.GetRawText());
        Assert.Equal(fromPackage.WeightsSha256, fromCheckpoint.WeightsSha256);
        Assert.NotNull(fromCheckpoint.Preprocessing);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(fromPackage.Preprocessing, ModelJson.Options),
            System.Text.Json.JsonSerializer.Serialize(fromCheckpoint.Preprocessing, ModelJson.Options));
    }

    [Fact]
    public void Resume_RejectsAnotherStageOrModel()
    {
        using var dir = new TempDirectory();
        TrainerBase.SeedEverything(1);
        using var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 2));
        var result = new FineTuneTrainer(model, new FineTuneOptions { CheckpointDirectory = dir.Path }).Run(Data());
        Assert.NotNull(result.CheckpointPath);

        using var probeBackbone = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0));
        var e = Assert.Throws<CheckpointException>(() =>
            new LinearProbeTrainer(probeBackbone, new LinearProbeOptions { NumClasses = 2, ResumeFrom = result.CheckpointPath }).Run(Data()));
        Assert.Contains("'finetune' training checkpoint", e.Message);

        using var wider = new BeitVisionTransformer(VitConfig.Micro(numClasses: 3));
        Assert.Throws<CheckpointException>(() => new FineTuneTrainer(wider, new FineTuneOptions { ResumeFrom = result.CheckpointPath }).Run(Data()));

        var fewerBatches = new SyntheticData(1, 1, (g, _) => SyntheticData.Stripes(g, 4, 32));
        using var same = new BeitVisionTransformer(VitConfig.Micro(numClasses: 2));
        var e2 = Assert.Throws<ArgumentException>(() => new FineTuneTrainer(same, new FineTuneOptions { ResumeFrom = result.CheckpointPath }).Run(fewerBatches));
        Assert.Contains("batches per epoch", e2.Message);
    }

    [Fact]
    public void OutputDirectory_ReceivesAModelPackage()
    {
        using var dir = new TempDirectory();
        TrainerBase.SeedEverything(2);
        using var tokenizer = new VqkdTokenizer(VqkdConfig.Micro());
        var data = new SyntheticData(2, 5, (g, _) =>
        {
            var b = SyntheticData.Stripes(g, 4, 32, unitRange: true);
            return new TrainingBatch { Images = b.Images, Targets = randn(new long[] { 4, 16, 32 }, generator: g) };
        });
        var output = dir.Combine("tokenizer");
        new TokenizerTrainer(tokenizer, null, new TokenizerTrainerOptions { OutputDirectory = output }).Run(data);
        using var loaded = ModelPackage.Load(output);
        var reloaded = loaded.As<VqkdTokenizer>();
        Assert.True(reloaded.Quantizer.Embedding.Initialised);
        Assert.Equal("tokenizer", loaded.Manifest.Metadata!["trained_by"]);
    }

    [Fact]
    public void ClipGradNorm_ScalesTheGlobalNormDownToTheLimit()
    {
        TrainerBase.SeedEverything(3);
        using var model = new BeitVisionTransformer(VitConfig.Micro(numClasses: 2));
        using var optimizer = new GroupedOptimizer(ParameterGroups.ForFineTuning(model, 0.05, 0.65));
        using (var logits = model.forward(randn(2, 3, 32, 32)))
        using (var loss = logits.pow(2).sum() * 1000)
            loss.backward();
        var before = optimizer.GradNorm();
        Assert.True(before > 1.0);
        var reported = optimizer.ClipGradNorm(1.0);
        Assert.Equal(before, reported, before * 1e-5);
        Assert.Equal(1.0, optimizer.GradNorm(), 1e-4);
        optimizer.ZeroGrad();
        Assert.Equal(0.0, optimizer.GradNorm());
    }
}
