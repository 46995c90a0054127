using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Tests.Parity;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Segmentation;

/// <summary>
/// Loading the segmenter: backbone initialisation from BEiT v2 ViT checkpoints (reference fixtures,
/// tables resized as mmcv_custom/checkpoint.py), whole mmseg-style state dicts, errors, our package.
/// </summary>
public sealed class SegmenterCheckpointTests
{
    private static string Fixture(string file) => Path.Combine(FixturePaths.ReferenceDir, file);

    private static Dictionary<string, Tensor> Snapshot(nn.Module m) =>
        m.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static void AssertSame(Tensor expected, Tensor actual, string what) =>
        Assert.True(expected.shape.SequenceEqual(actual.shape) && expected.Equals(actual), $"{what} differs");

    /// <summary>
    /// The backbone of the segmenter on the vit_cls fixture (2 blocks, 64 px → 4×4 window): with the
    /// same img_size its block outputs are exactly the ViT's hidden states (and match the Python
    /// reference); at 128 px the tables are resized 4×4 → 8×8 and the rest is copied unchanged.
    /// </summary>
    [Fact]
    public void BackboneFromTheVitClsFixtureMatchesTheVitExactlyAndResizesTablesForOtherSizes()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load("vit_cls");
        var vitConfig = ModelJson.Deserialize<VitConfig>(fixture.Config, "vit_cls");
        var io = fixture.LoadIo();
        var images = io["images"];

        using var vit = new BeitVisionTransformer(vitConfig);
        VitCheckpoint.Load(vit, fixture.WeightsPth);
        vit.eval();
        using var backbone = new BeitSegmentationBackbone(vitConfig, new[] { 0, 1 });
        var necksBefore = Snapshot(backbone).Where(kv => kv.Key.StartsWith("fpn", StringComparison.Ordinal)).ToList();
        SegmenterCheckpoint.LoadBackbone(backbone, fixture.WeightsPth);
        backbone.eval();
        foreach (var (k, v) in necksBefore) AssertSame(v, backbone.state_dict()[k], k + " (necks are not in a ViT checkpoint)");

        using (no_grad())
        {
            using var reference = vit.ForwardFeatures(images, keepHidden: true);
            var hidden = backbone.ForwardHidden(images);
            Assert.Equal(2, hidden.Length);
            for (var i = 0; i < 2; i++)
            {
                AssertSame(reference.Hidden[i], hidden[i], $"hidden_{i}");
                TensorAssert.Matches(fixture.Io.Single(x => x.Name == $"hidden_{i}"), io[$"hidden_{i}"], hidden[i]);
            }
            // beit.py: x[:, 1:] → permute → (B, C, Hp, Wp); then fpn1 / fpn2.
            var maps = backbone.ForwardFeatureMaps(images);
            for (var i = 0; i < 2; i++)
                AssertSame(hidden[i][.., 1..].permute(0, 2, 1).reshape(2, 64, 4, 4), maps[i], $"feature map {i}");
            Assert.Equal(new[] { new long[] { 2, 64, 16, 16 }, new long[] { 2, 64, 8, 8 } }, backbone.forward(images).Select(t => t.shape));
        }

        // Another img_size: the 4×4 tables (52 rows) become 8×8 tables (228 rows), as the reference loader resizes them.
        var raw = StateDictFile.Read(fixture.WeightsPth);
        using var big = new BeitSegmentationBackbone(vitConfig with { ImgSize = 128 }, new[] { 0, 1 });
        SegmenterCheckpoint.LoadBackbone(big, raw);
        var sd = big.state_dict();
        for (var i = 0; i < 2; i++)
        {
            var key = $"blocks.{i}.attn.relative_position_bias_table";
            Assert.Equal(new long[] { 228, 4 }, sd[key].shape);
            AssertSame(RelativePositionTableResizer.Resize(raw[key], (4, 4), (8, 8)), sd[key], key);
        }
        foreach (var key in new[] { "cls_token", "patch_embed.proj.weight", "blocks.1.gamma_2", "blocks.1.mlp.fc2.weight" })
            AssertSame(raw[key], sd[key], key);
        using (no_grad())
            Assert.Equal(new long[] { 1, 64, 32, 32 }, big.forward(Images(1, 128))[0].shape);
    }

    /// <summary>
    /// A fine-tuning checkpoint (fc_norm/head ignored) into a whole segmenter: the vit_cls blocks,
    /// repeated to 4 blocks so that 4 distinct out_indices exist; heads stay at their init.
    /// </summary>
    [Fact]
    public void SegmenterFromAFineTunedVitCheckpointInitialisesOnlyTheBackbone()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load("vit_cls");
        var vitConfig = ModelJson.Deserialize<VitConfig>(fixture.Config, "vit_cls") with { Depth = 4 };
        var raw = StateDictFile.Read(fixture.WeightsPth);
        var fourBlocks = new Dictionary<string, Tensor>(raw);
        foreach (var (k, v) in raw.Where(kv => kv.Key.StartsWith("blocks.", StringComparison.Ordinal)).ToList())
            fourBlocks["blocks." + (int.Parse(k.Split('.')[1]) + 2) + k[(k.IndexOf('.', 7))..]] = v;

        SegmentationConfig Config(int img) => new()
        {
            Backbone = vitConfig with { ImgSize = img, NumClasses = 0 }, OutIndices = new[] { 0, 1, 2, 3 },
            NumClasses = 3, Channels = 16, AuxChannels = 8,
        };

        // Same size: exact against the ViT built from the same weights.
        using var model = new BeitSegmenter(Config(64));
        var heads = Snapshot(model).Where(kv => !kv.Key.StartsWith("backbone.blocks", StringComparison.Ordinal)
                                                && !kv.Key.StartsWith("backbone.cls", StringComparison.Ordinal)
                                                && !kv.Key.StartsWith("backbone.patch", StringComparison.Ordinal)).ToList();
        SegmenterCheckpoint.Load(model, fourBlocks);
        foreach (var (k, v) in heads) AssertSame(v, model.state_dict()[k], k + " (not in the ViT checkpoint)");
        using var vit = new BeitVisionTransformer(vitConfig);
        VitCheckpoint.Load(vit, fourBlocks);
        vit.eval();
        model.eval();
        var images = fixture.LoadIo()["images"];
        using (no_grad())
        {
            using var reference = vit.ForwardFeatures(images, keepHidden: true);
            var hidden = model.Backbone.ForwardHidden(images);
            for (var i = 0; i < 4; i++) AssertSame(reference.Hidden[i], hidden[i], $"block {i}");
            Assert.Equal(new long[] { 2, 3, 16, 16 }, model.forward(images).shape);
        }

        // Another size: per-layer tables resized, the rest copied.
        using var big = new BeitSegmenter(Config(128));
        SegmenterCheckpoint.Load(big, fourBlocks);
        var sd = big.state_dict();
        AssertSame(RelativePositionTableResizer.Resize(raw["blocks.1.attn.relative_position_bias_table"], (4, 4), (8, 8)),
            sd["backbone.blocks.3.attn.relative_position_bias_table"], "resized table of block 3");
        AssertSame(raw["blocks.0.attn.qkv.weight"], sd["backbone.blocks.2.attn.qkv.weight"], "qkv of block 2");
    }

    /// <summary>The mim fixture (official pretraining layout: shared table, mask_token, lm_head, norm, cls_pt_layers) into a 128 px segmenter.</summary>
    [Fact]
    public void SegmenterFromThePretrainingFixtureExpandsAndResizesTheSharedTable()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load("mim");
        var mimConfig = ModelJson.Deserialize<MimConfig>(fixture.Config, "mim");
        var raw = StateDictFile.Read(fixture.WeightsPth);
        Assert.Contains("rel_pos_bias.relative_position_bias_table", raw.Keys);
        Assert.Contains("mask_token", raw.Keys);

        SegmentationConfig Config(int img) => new()
        {
            Backbone = mimConfig.ToBackbone(numClasses: 0) with { ImgSize = img }, OutIndices = new[] { 0, 1, 2, 3 },
            NumClasses = 4, Channels = 16, AuxChannels = 8,
        };
        using var model = new BeitSegmenter(Config(128));
        SegmenterCheckpoint.Load(model, fixture.WeightsPth);
        var sd = model.state_dict();
        var resized = RelativePositionTableResizer.Resize(raw["rel_pos_bias.relative_position_bias_table"], (4, 4), (8, 8));
        for (var i = 0; i < 4; i++)
            AssertSame(resized, sd[$"backbone.blocks.{i}.attn.relative_position_bias_table"], $"table of block {i}");
        AssertSame(raw["cls_token"], sd["backbone.cls_token"], "cls_token");
        AssertSame(raw["blocks.3.mlp.fc1.weight"], sd["backbone.blocks.3.mlp.fc1.weight"], "fc1 of block 3");

        // Same size: identical to the MIM model's own block outputs (shared bias added in every block).
        using var same = new BeitSegmenter(Config(64));
        SegmenterCheckpoint.Load(same, raw);
        using var mim = new BeitMim(mimConfig);
        MimCheckpoint.Load(mim, raw);
        same.eval();
        mim.eval();
        var images = fixture.LoadIo()["images"];
        using (no_grad())
        {
            using var reference = mim.ForwardFeatures(images, null, keepHidden: true);
            var hidden = same.Backbone.ForwardHidden(images);
            for (var i = 0; i < 4; i++) AssertSame(reference.Hidden[i], hidden[i], $"block {i}");
        }
    }

    /// <summary>An mmseg-style whole checkpoint: 'module.' prefixes and stored relative_position_index are handled.</summary>
    [Fact]
    public void WholeSegmenterStateDictsLoadWithModulePrefixAndStoredIndices()
    {
        using var scope = NewDisposeScope();
        manual_seed(8);
        using var source = new BeitSegmenter(SegmentationConfig.Micro());
        using (no_grad())
            foreach (var (k, v) in source.state_dict().Where(kv => kv.Key.Contains("running_", StringComparison.Ordinal)))
                v.add_(0.5);
        var official = source.state_dict().ToDictionary(kv => "module." + kv.Key, kv => kv.Value);
        for (var i = 0; i < 4; i++)
            official[$"module.backbone.blocks.{i}.attn.relative_position_index"] = zeros(new long[] { 17, 17 }, ScalarType.Int64);
        official.Remove("module.decode_head.bottleneck.bn.num_batches_tracked"); // mmcv tolerates a missing counter

        using var target = new BeitSegmenter(SegmentationConfig.Micro());
        SegmenterCheckpoint.Load(target, official);
        var want = source.state_dict();
        foreach (var (k, v) in target.state_dict())
            if (!k.EndsWith("num_batches_tracked", StringComparison.Ordinal))
                AssertSame(want[k], v, k);

        // An inference-only model (no auxiliary head) takes the same file.
        using var noAux = new BeitSegmenter(SegmentationConfig.Micro() with { UseAuxHead = false });
        SegmenterCheckpoint.Load(noAux, official);
        AssertSame(want["decode_head.conv_seg.weight"], noAux.state_dict()["decode_head.conv_seg.weight"], "conv_seg");
    }

    [Fact]
    public void MismatchesAreReportedByKey()
    {
        using var scope = NewDisposeScope();
        using var source = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        var sd = source.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        sd.Remove("decode_head.fpn_convs.1.conv.weight");
        sd["decode_head.extra.weight"] = zeros(3);

        using var target = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 5));
        var e = Assert.Throws<CheckpointException>(() => SegmenterCheckpoint.Load(target, sd));
        Assert.Contains("decode_head.fpn_convs.1.conv.weight", e.MissingKeys);
        Assert.Contains("decode_head.extra.weight", e.UnexpectedKeys);

        using var otherClasses = new BeitSegmenter(SegmentationConfig.Micro(numClasses: 7));
        var shape = Assert.Throws<CheckpointException>(() => SegmenterCheckpoint.Load(otherClasses, source.state_dict()));
        Assert.Contains(shape.ShapeMismatches, s => s.StartsWith("decode_head.conv_seg.weight", StringComparison.Ordinal));

        // A ViT checkpoint of another architecture: the backbone keys are named.
        var vit = StateDictFile.Read(Fixture("vit_cls.pth")); // 64 wide, 2 blocks; Micro is 32 wide, 4 blocks
        var fromVit = Assert.Throws<CheckpointException>(() => SegmenterCheckpoint.Load(target, vit));
        Assert.Contains("backbone.blocks.3.attn.qkv.weight", fromVit.MissingKeys);
        Assert.Contains(fromVit.ShapeMismatches, s => s.StartsWith("backbone.cls_token", StringComparison.Ordinal));
        Assert.DoesNotContain(fromVit.MissingKeys, k => k.StartsWith("decode_head.", StringComparison.Ordinal));
    }

    [Fact]
    public void RoundTripsThroughOurModelPackage()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempDirectory();
        manual_seed(9);
        var config = SegmentationConfig.Micro(numClasses: 4);
        using var model = new BeitSegmenter(config);
        model.train();
        using (no_grad()) model.forward(Images(2)).Dispose(); // non-default BatchNorm statistics
        model.eval();

        var dir = tmp.Combine("seg");
        ModelPackage.Save(model, dir, labels: new[] { "sky", "tree", "road", "car" });
        Assert.Equal(ModelKind.Segmenter, ModelPackage.ReadManifest(dir).Kind);
        using var loaded = ModelPackage.Load(dir);
        Assert.Equal(ModelKind.Segmenter, loaded.Kind);
        Assert.Contains(ModelKind.Segmenter, ModelKind.All);
        var restored = loaded.As<BeitSegmenter>();
        Assert.Equal(config, restored.Config);
        var want = model.state_dict();
        Assert.Equal(want.Keys.Order(), restored.state_dict().Keys.Order());
        foreach (var (k, v) in restored.state_dict()) AssertSame(want[k], v, k);

        restored.eval();
        using var images = Images(2);
        using (no_grad())
            AssertSame(model.forward(images), restored.forward(images), "logits");
    }

    /// <summary>
    /// A 4 px patch segmenter with output stride 2 through our package (via the model catalogue): the manifest's config
    /// names output_stride 2, and the loaded model has the upsampling fpn1 with the same weights and logits.
    /// </summary>
    [Fact]
    public void OutputStride2_RoundTripsThroughOurModelPackage()
    {
        using var scope = NewDisposeScope();
        using var tmp = new TempDirectory();
        manual_seed(19);
        var config = SegmentationConfig.Micro(numClasses: 4) with
        {
            Backbone = SegmentationConfig.Micro().Backbone with { ImgSize = 32, PatchSize = 4 }, OutputStride = 2,
        };
        using var model = new BeitSegmenter(config);
        model.train();
        using (no_grad()) model.forward(Images(2, 32)).Dispose(); // non-default BatchNorm statistics, fpn1.1 included
        model.eval();

        var dir = tmp.Combine("seg-os2");
        ModelPackage.Save(model, dir);
        Assert.Contains("\"output_stride\": 2", File.ReadAllText(Path.Combine(dir, ModelPackage.ManifestFile)));
        using var loaded = ModelPackage.Load(dir);
        var restored = loaded.As<BeitSegmenter>();
        Assert.Equal(config, restored.Config);
        Assert.Equal(2, restored.Backbone.OutputStride);
        var want = model.state_dict();
        Assert.Contains("backbone.fpn1.1.running_var", want.Keys);
        Assert.Equal(want.Keys.Order(), restored.state_dict().Keys.Order());
        foreach (var (k, v) in restored.state_dict()) AssertSame(want[k], v, k);

        restored.eval();
        using var images = Images(2, 32);
        using (no_grad())
        {
            var logits = restored.forward(images);
            Assert.Equal(new long[] { 2, 4, 16, 16 }, logits.shape);
            AssertSame(model.forward(images), logits, "logits");
        }
    }

    private static Tensor Images(int batch, int size = 64)
    {
        using var g = new TorchSharp.torch.Generator(21);
        return randn(new long[] { batch, 3, size, size }, generator: g);
    }
}
