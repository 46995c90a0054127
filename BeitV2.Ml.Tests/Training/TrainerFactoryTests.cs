using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Training;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Training;

/// <summary>
/// The trainers' model factories that a training job uses: a classifier or segmenter initialised from a loaded
/// model (head replacement, segmentation from a backbone), and the blocks that feed the segmenter's necks.
/// </summary>
[Collection(TrainingCollection.Name)]
public class TrainerFactoryTests
{
    private static bool Same(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var scope = NewDisposeScope();
        return a.detach().cpu().eq(b.detach().cpu()).all().item<bool>();
    }

    [Theory]
    [InlineData(12, new[] { 3, 5, 7, 11 })]   // upernet_beit_base_12_512_slide_160k_ade20k: out_indices=[3, 5, 7, 11]
    [InlineData(24, new[] { 7, 11, 15, 23 })] // upernet_beit_large_24_512_slide_160k_ade20k: out_indices=[7, 11, 15, 23]
    [InlineData(6, new[] { 0, 2, 3, 5 })]     // no reference config: what the bundled 6-block segmenter was trained with
    [InlineData(4, new[] { 0, 1, 2, 3 })]
    [InlineData(8, new[] { 1, 3, 5, 7 })]
    public void OutIndices_AreThePublishedConfigs_AtTheirDepths(int depth, int[] expected)
    {
        Assert.Equal(expected, SegmentationConfig.DefaultOutIndices(depth));
        Assert.Equal(expected, SegmentationConfig.FromBackbone(VitConfig.Base(0) with { Depth = depth }, 3).OutIndices);
        Assert.Throws<ArgumentException>(() => SegmentationConfig.DefaultOutIndices(3));
    }

    [Fact]
    public void DeducingTheBundledSegmentersArchitecture_FindsTheBlocksItWasTrainedWith()
    {
        // Its weights do not record out_indices; deducing them from the depth (6) must give what the pipeline used.
        var folder = Directory.GetDirectories(Path.Combine(FixturePaths.RepoRoot, "BeitV2.Web", "DefaultModels"), "segmenter-*").Single();
        using var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "manifest.json")));
        var trained = manifest.RootElement.GetProperty("config").GetProperty("out_indices").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var weights = CheckpointKeys.Normalize(StateDictFile.Read(Path.Combine(folder, "weights.safetensors")));
        try
        {
            var deduced = (SegmentationConfig)ArchitectureDeduction.Deduce(weights).Config;
            Assert.Equal(6, deduced.Backbone.Depth);
            Assert.Equal(trained, deduced.OutIndices);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    [Fact]
    public void EverySegmenterPreset_AtDepth12_FeedsTheNecksAsTheReference()
    {
        // The base preset and the tiny one (a 12-block ViT-Ti backbone) agree with the published base config.
        Assert.Equal(new[] { 3, 5, 7, 11 }, ModelPresets.Segmenter(ModelPresets.Base, 150).OutIndices);
        Assert.Equal(new[] { 3, 5, 7, 11 }, ModelPresets.Segmenter(ModelPresets.Tiny, 150).OutIndices);
        Assert.Equal(new[] { 0, 2, 3, 5 }, ModelPresets.Segmenter(ModelPresets.Small, 11).OutIndices);
        Assert.Throws<ArgumentException>(() => ModelPresets.Vit("huge", 10));
    }

    [Fact]
    public void SegmenterFromASegmenter_WithOtherClasses_KeepsEverythingButTheClassifiers()
    {
        TrainerBase.SeedEverything(1);
        using var source = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        var before = ModelState.Snapshot(source);
        using var model = SegmentationTrainer.CreateModel(source, numClasses: 3);

        Assert.Equal(3, model.Config.NumClasses);
        var sd = model.state_dict();
        Assert.Equal(3, sd["decode_head.conv_seg.weight"].shape[0]);
        Assert.Equal(3, sd["auxiliary_head.conv_seg.weight"].shape[0]);
        Assert.False(ModelState.AnyDifferent(before, model, k => !k.Contains(".conv_seg.", StringComparison.Ordinal)));
        ModelState.Dispose(before);
    }

    [Fact]
    public void SegmenterFromASegmenter_WithTheSameClasses_CopiesTheClassifiersToo()
    {
        TrainerBase.SeedEverything(2);
        using var source = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        var before = ModelState.Snapshot(source);
        TrainerBase.SeedEverything(3);
        using var model = SegmentationTrainer.CreateModel(source, numClasses: 5);
        ModelState.AssertIdentical(before, model);
        ModelState.Dispose(before);
    }

    [Fact]
    public void SegmenterFromA12BlockBackbone_FeedsTheReferenceBlocks_AndCopiesTheTransformer()
    {
        TrainerBase.SeedEverything(4);
        using var vit = new BeitVisionTransformer(VitConfig.Base(numClasses: 10) with
        {
            ImgSize = 48, PatchSize = 16, EmbedDim = 16, Depth = 12, NumHeads = 2,
        });
        using var model = SegmentationTrainer.CreateModel(vit, numClasses: 4, imageSize: 64);

        Assert.Equal(new[] { 3, 5, 7, 11 }, model.Config.OutIndices);
        Assert.Equal(64, model.Config.Backbone.ImgSize);
        Assert.Equal(0, model.Config.Backbone.NumClasses);
        var sd = model.state_dict();
        foreach (var (key, value) in vit.state_dict())
        {
            if (!key.StartsWith("blocks.", StringComparison.Ordinal) || key.Contains("relative_position", StringComparison.Ordinal)) continue;
            Assert.True(Same(value, sd["backbone." + key]), $"{key} was not copied into the backbone");
        }
    }

    [Fact]
    public void SegmenterFromAMimModel_UsesItsBackbone()
    {
        TrainerBase.SeedEverything(5);
        using var mim = new BeitMim(MimConfig.Micro());
        using var model = SegmentationTrainer.CreateModel(mim, numClasses: 2);
        Assert.Equal(mim.Config.ToBackbone(0) with { ImgSize = mim.Config.ImgSize }, model.Config.Backbone);
        Assert.Equal(SegmentationConfig.DefaultOutIndices(mim.Config.Depth), model.Config.OutIndices);
        Assert.True(Same(mim.state_dict()["blocks.0.mlp.fc1.weight"], model.state_dict()["backbone.blocks.0.mlp.fc1.weight"]));
    }

    [Fact]
    public void FineTuneFromAClassifier_WithOtherClasses_ReplacesTheHead()
    {
        TrainerBase.SeedEverything(6);
        using var source = new BeitVisionTransformer(VitConfig.Micro(numClasses: 10));
        var before = ModelState.Snapshot(source);
        using var model = FineTuneTrainer.CreateModel(source, numClasses: 3);

        Assert.Equal(source.Config with { NumClasses = 3 }, model.Config);
        Assert.Equal(new long[] { 3, source.Config.EmbedDim }, model.state_dict()["head.weight"].shape);
        Assert.False(ModelState.AnyDifferent(before, model, k => !k.StartsWith("head.", StringComparison.Ordinal)));
        ModelState.Dispose(before);
    }

    [Fact]
    public void FineTuneFromAClassifier_WithTheSameClasses_KeepsItsHead_AndTakesTheRecipesDropPath()
    {
        TrainerBase.SeedEverything(7);
        using var source = new BeitVisionTransformer(VitConfig.Micro(numClasses: 10));
        var before = ModelState.Snapshot(source);
        using var model = FineTuneTrainer.CreateModel(source, numClasses: 10, new FineTuneOptions { DropPathRate = 0.1 });
        Assert.Equal(0.1, model.Config.DropPathRate);
        ModelState.AssertIdentical(before, model);
        ModelState.Dispose(before);
    }

    [Fact]
    public void FineTuneFromAMimModel_StartsFromItsBackbone()
    {
        TrainerBase.SeedEverything(8);
        using var mim = new BeitMim(MimConfig.Micro());
        using var model = FineTuneTrainer.CreateModel(mim, numClasses: 5);
        Assert.Equal(mim.Config.ToBackbone(5), model.Config);
        Assert.True(Same(mim.state_dict()["blocks.1.attn.qkv.weight"], model.state_dict()["blocks.1.attn.qkv.weight"]));
        using var segmenter = new BeitSegmenter(SegmentationConfig.Micro());
        Assert.Throws<ArgumentException>(() => FineTuneTrainer.CreateModel(segmenter, 5));
    }

    [Fact]
    public void TokenizerForAClassifierTeacher_SeesItsPatchGrid_AndRegressesItsFeatures()
    {
        TrainerBase.SeedEverything(9);
        using var vit = new BeitVisionTransformer(VitConfig.Micro(numClasses: 10) with { EmbedDim = 48 });
        var (teacher, size, patch) = TokenizerTrainer.TeacherOf(vit, "the classifier");
        Assert.Equal((32, 8), (size, patch));
        using var tokenizer = TokenizerTrainer.CreateModel(ModelPresets.Vqkd(ModelPresets.Micro, teacherDim: 1, codebookSize: 16), teacher, 40, patch);
        Assert.Equal(48, tokenizer.Config.DecoderOutDim);
        Assert.Equal((40, 8, 5), (tokenizer.Config.Encoder.ImgSize, tokenizer.Config.Encoder.PatchSize, tokenizer.Config.Decoder.ImgSize));
        Assert.Equal(16, tokenizer.Config.NEmbed);

        using var mim = new BeitMim(MimConfig.Micro());
        Assert.Contains("'the MIM model' (BeitMim) cannot serve as a VQ-KD teacher",
            Assert.Throws<ArgumentException>(() => TokenizerTrainer.TeacherOf(mim, "the MIM model")).Message);
    }

    [Fact]
    public void LinearProbe_ReadsWhatTheBackbonesOwnHeadWouldUnlessAsked()
    {
        using var meanPooled = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0) with { UseMeanPooling = true });
        using var clsPooled = new BeitVisionTransformer(VitConfig.Micro(numClasses: 0) with { UseMeanPooling = false });
        using var mim = new BeitMim(MimConfig.Micro());
        var options = new LinearProbeOptions { NumClasses = 3 };
        ProbeFeature FeatureOf(nn.Module backbone, ProbeFeature? asked = null)
        {
            var trainer = LinearProbeTrainer.For(backbone, options, asked);
            trainer.Probe.Dispose();
            return trainer.Options.Feature;
        }
        Assert.Equal(ProbeFeature.Mean, FeatureOf(meanPooled));
        Assert.Equal(ProbeFeature.Cls, FeatureOf(clsPooled));
        Assert.Equal(ProbeFeature.Cls, FeatureOf(mim));
        Assert.Equal(ProbeFeature.Cls, FeatureOf(meanPooled, ProbeFeature.Cls));
        Assert.Equal(meanPooled.Config.ImgSize, LinearProbeTrainer.InputSize(meanPooled));
        Assert.Equal(mim.Config.ImgSize, LinearProbeTrainer.InputSize(mim));

        using var segmenter = new BeitSegmenter(SegmentationConfig.Micro());
        Assert.Contains("ViT or MIM", Assert.Throws<ArgumentException>(() => LinearProbeTrainer.For(segmenter, options)).Message);
        Assert.Contains("ViT or MIM", Assert.Throws<ArgumentException>(() => LinearProbeTrainer.InputSize(segmenter)).Message);
    }
}
