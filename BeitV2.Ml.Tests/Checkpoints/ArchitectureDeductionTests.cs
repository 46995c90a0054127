using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;
using BeitV2.Ml.Tests.Parity;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Checkpoints;

/// <summary>
/// Architecture inference from state dicts: every reference fixture (its config recovered field by
/// field, then its reference output reproduced by the built model), fresh models of the presets and
/// their variants, segmenters (mmseg keys) and their unsupported variants, and the failure modes.
/// </summary>
public sealed class ArchitectureDeductionTests
{
    /// <summary>
    /// Fields that affect the computation but are not recorded in the fixture's weights: the tests
    /// pass them as the config override (taken from the fixture's own config). Without it they fall
    /// back to the documented defaults, which differ from these fixtures:
    /// MIM early_layers (depth 4 → 4 − 3 = 1, fixture 2); the head count of models without a relative
    /// table (width 64 / 64 = 1, fixtures 4).
    /// </summary>
    private static readonly Dictionary<string, string[]> NeedsOverride = new()
    {
        ["vit_cls"] = Array.Empty<string>(),
        ["mim"] = new[] { "early_layers" },
        ["vqkd"] = new[] { "encoder.num_heads", "decoder.num_heads" },
        ["clip_teacher"] = new[] { "heads" },
        ["dino_teacher"] = new[] { "num_heads" },
    };

    /// <summary>
    /// Every field not read from the weights, per kind (without override): training-only settings,
    /// LayerNorm eps and qk_scale (never recorded; the defaults are what every released model uses),
    /// the exact layer-scale init (overwritten by the checkpoint's gammas), VQ-KD's process type,
    /// decay and teacher, plus the fields of <see cref="NeedsOverride"/>.
    /// </summary>
    private static readonly Dictionary<string, string[]> Defaulted = new()
    {
        ["vit_cls"] = new[] { "norm_eps", "qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate", "init_scale", "init_values" },
        ["mim"] = new[] { "norm_eps", "qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate", "init_std", "init_values", "early_layers" },
        ["vqkd"] = new[] { "encoder.", "decoder." }
            .SelectMany(p => new[] { "norm_eps", "qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate", "init_scale", "num_heads" }.Select(f => p + f))
            .Concat(new[] { "quantize_kmeans_init", "teacher_model_type", "process_type", "decay", "rec_loss_type", "teacher_input_size" })
            .ToArray(),
        ["clip_teacher"] = new[] { "heads" },
        ["dino_teacher"] = new[] { "num_heads", "norm_eps", "qk_scale", "drop_rate", "attn_drop_rate", "drop_path_rate" },
    };

    /// <summary>
    /// Fixture config values that are not architecture: the VQ-KD fixture stubs its teacher
    /// ("None (stubbed; targets fed directly)"); a loaded tokenizer has none ("none"), as the
    /// reference's as_tokenzer=True.
    /// </summary>
    private static readonly Dictionary<string, string[]> NotCompared = new()
    {
        ["vqkd"] = new[] { "teacher_model_type" },
    };

    public static TheoryData<string> Stems() => new(NeedsOverride.Keys);

    [Theory]
    [MemberData(nameof(Stems))]
    public void FixtureConfigIsRecoveredFieldByField(string stem)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        var sd = Weights(fixture);
        var expected = Normalised(fixture);
        var skip = NotCompared.GetValueOrDefault(stem, Array.Empty<string>());

        // Without override: everything but the documented fields matches; those are defaulted and said so.
        var bare = ArchitectureDeduction.Deduce(sd);
        Assert.Equal(fixture.Kind, bare.Kind);
        Assert.Equal(Defaulted[stem].Order(), bare.DefaultedFields.Order());
        Assert.Empty(Differences(expected, bare.ConfigJson, skip.Concat(NeedsOverride[stem]).ToArray()));
        foreach (var field in NeedsOverride[stem])
        {
            Assert.Contains(field, Differences(expected, bare.ConfigJson, skip));
            Assert.Contains(bare.Notes, n => n.StartsWith(field + " = ", StringComparison.Ordinal) && n.Contains("default"));
        }

        // With the fixture's values for those fields as the override, every field matches.
        var inferred = ArchitectureDeduction.Deduce(sd, OverrideFor(fixture));
        Assert.Equal(fixture.Kind, inferred.Kind);
        Assert.Empty(Differences(expected, inferred.ConfigJson, skip));
        Assert.Equal(Defaulted[stem].Except(NeedsOverride[stem]).Order(), inferred.DefaultedFields.Order());
        foreach (var field in NeedsOverride[stem])
            Assert.Contains(inferred.Notes, n => n.StartsWith(field + " = ", StringComparison.Ordinal) && n.Contains("override"));
        Assert.Equal(inferred.ConfigJson.GetRawText(), JsonSerializer.SerializeToElement(inferred.Config, inferred.Config.GetType(), ModelJson.Options).GetRawText());
    }

    [Theory]
    [MemberData(nameof(Stems))]
    public void BuiltModelReproducesTheReferenceOutput(string stem)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        var sd = Weights(fixture);
        var inferred = ArchitectureDeduction.Deduce(sd, OverrideFor(fixture));
        using var module = ArchitectureDeduction.BuildAndLoad(inferred, sd);
        module.eval();
        var io = fixture.LoadIo();
        using var _ = inference_mode();
        switch (module)
        {
            case BeitVisionTransformer m:
                AssertClose("logits", io["logits"], m.forward(io["images"]));
                break;
            case BeitMim m:
                var logits = m.forward(io["images"], io["bool_masked_pos"]);
                AssertClose("logits_final", io["logits_final"], logits[0]);
                AssertClose("logits_agg", io["logits_agg"], logits[1]);
                break;
            case VqkdTokenizer m:
                var ids = m.GetCodebookIndices(io["images_raw"]);
                Assert.Equal(io["token_ids"].shape, ids.shape);
                Assert.True(ids.to_type(int64).Equals(io["token_ids"].to_type(int64)), "token ids differ");
                break;
            case ClipTeacher m:
                AssertClose("cls_embedding", io["cls_embedding"], m.forward(io["images_scaled"]));
                break;
            case DinoVisionTransformer m:
                AssertClose("cls_embedding", io["cls_embedding"], m.forward(io["images_scaled"]));
                break;
            default:
                Assert.Fail($"unexpected module {module.GetType().Name} for {stem}");
                break;
        }
    }

    /// <summary>Teachers without the heads override load (the shapes do not depend on it) but compute something else: hence the note.</summary>
    [Theory]
    [InlineData("clip_teacher")]
    [InlineData("dino_teacher")]
    public void TeacherHeadsDefaultToWidthOver64AndMatterForTheOutput(string stem)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        var sd = Weights(fixture);
        var inferred = ArchitectureDeduction.Deduce(sd);
        var field = NeedsOverride[stem].Single();
        Assert.Equal(1, inferred.ConfigJson.GetProperty(field).GetInt32());
        Assert.Contains(inferred.Notes, n => n.StartsWith($"{field} = 1 (default", StringComparison.Ordinal) && n.Contains("width / 64"));
        using var module = ArchitectureDeduction.BuildAndLoad(inferred, sd);
        module.eval();
        var io = fixture.LoadIo();
        using var _ = inference_mode();
        var got = module switch
        {
            ClipTeacher t => t.forward(io["images_scaled"]),
            DinoVisionTransformer t => t.forward(io["images_scaled"]),
            _ => throw new InvalidOperationException(module.GetType().Name),
        };
        Assert.False(got.allclose(io["cls_embedding"], rtol: 1e-3, atol: 1e-3), "a wrong head count should change the output");
    }

    /// <summary>A teacher saved out of a VQ-KD training checkpoint keeps its <c>teacher_model.</c> prefix on every key.</summary>
    [Fact]
    public void TeacherUnderTeacherModelPrefixIsRecognised()
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load("dino_teacher");
        var sd = Weights(fixture).ToDictionary(kv => "teacher_model." + kv.Key, kv => kv.Value);
        var inferred = ArchitectureDeduction.Deduce(sd, OverrideFor(fixture));
        Assert.Equal(ModelKind.DinoTeacher, inferred.Kind);
        using var module = ArchitectureDeduction.BuildAndLoad(inferred, sd);
        Assert.IsType<DinoVisionTransformer>(module);
    }

    // ------------------------------------------------------------ synthetic models

    public static TheoryData<string> VitVariants() => new(
        "per-layer tables", "shared table", "no layer scale", "cls pooling", "no q bias", "features only", "abs pos, narrow heads");

    private static (VitConfig Config, string? Override) VitVariant(string name) => name switch
    {
        "per-layer tables" => (VitConfig.Micro(), null),
        "shared table" => (VitConfig.Micro() with { UseRelPosBias = false, UseSharedRelPosBias = true }, null),
        "no layer scale" => (VitConfig.Micro() with { InitValues = 0 }, null),
        "cls pooling" => (VitConfig.Micro() with { UseMeanPooling = false }, null),
        "no q bias" => (VitConfig.Micro() with { QkvBias = false }, null),
        "features only" => (VitConfig.Micro(numClasses: 0), null),
        // No table: heads come from the override; qkv narrower than the width gives attn_head_dim.
        "abs pos, narrow heads" => (VitConfig.Micro() with { UseAbsPosEmb = true, UseRelPosBias = false, AttnHeadDim = 8 }, """{"num_heads": 2}"""),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(VitVariants))]
    public void FreshVitVariantsAreRecoveredExactlyAndReload(string variant)
    {
        using var scope = NewDisposeScope();
        var (config, over) = VitVariant(variant);
        manual_seed(11);
        using var model = new BeitVisionTransformer(config);
        // As a DeepSpeed file: 'module.' prefix, index buffers included.
        var sd = model.state_dict().ToDictionary(kv => "module." + kv.Key, kv => kv.Value);

        var inferred = ArchitectureDeduction.Deduce(sd, over is null ? null : Json(over));
        Assert.Equal(ModelKind.VitCls, inferred.Kind);
        Assert.Equal(config, inferred.Config);

        using var built = (BeitVisionTransformer)ArchitectureDeduction.BuildAndLoad(inferred, sd);
        AssertSameWeights(model, built);
        model.eval();
        built.eval();
        using var _ = inference_mode();
        var x = randn(2, 3, config.ImgSize, config.ImgSize);
        Assert.True(model.forward(x).Equals(built.forward(x)));
    }

    [Fact]
    public void VitWithoutTableDefaultsHeadsAndSaysSo()
    {
        using var scope = NewDisposeScope();
        using var model = new BeitVisionTransformer(VitConfig.Micro() with { UseAbsPosEmb = true, UseRelPosBias = false });
        var inferred = ArchitectureDeduction.Deduce(model.state_dict());
        Assert.Equal(1, ((VitConfig)inferred.Config).NumHeads); // 32 / 64, at least 1
        Assert.Contains("num_heads", inferred.DefaultedFields);
        Assert.Contains(inferred.Notes, n => n.StartsWith("num_heads = 1 (default", StringComparison.Ordinal));
        Assert.Contains(inferred.Notes, n => n.StartsWith("img_size = 32: ", StringComparison.Ordinal) && n.Contains("pos_embed"));
    }

    [Fact]
    public void FreshMimIsRecoveredWithEarlyLayersFromTheOverride()
    {
        using var scope = NewDisposeScope();
        var config = MimConfig.Micro() with { SharedLmHead = false };
        manual_seed(12);
        using var model = new BeitMim(config);
        var sd = model.state_dict();

        var bare = ArchitectureDeduction.Deduce(sd);
        Assert.Equal(ModelKind.Mim, bare.Kind);
        Assert.Equal(config with { EarlyLayers = 1 }, bare.Config); // depth 4 − 3
        Assert.Contains("early_layers", bare.DefaultedFields);

        var inferred = ArchitectureDeduction.Deduce(sd, Json("""{"early_layers": 2}"""));
        Assert.Equal(config, inferred.Config);
        Assert.DoesNotContain("early_layers", inferred.DefaultedFields);
        using var built = ArchitectureDeduction.BuildAndLoad(inferred, sd);
        AssertSameWeights(model, built);
    }

    [Fact]
    public void FreshVqkdIsRecoveredWithHeadsFromTheOverride()
    {
        using var scope = NewDisposeScope();
        manual_seed(13);
        using var model = new VqkdTokenizer(VqkdConfig.Micro() with { QuantizeKmeansInit = false });
        var sd = model.state_dict();
        var inferred = ArchitectureDeduction.Deduce(sd, Json("""{"encoder": {"num_heads": 2}, "decoder": {"num_heads": 2}}"""));
        Assert.Equal(ModelKind.Vqkd, inferred.Kind);
        Assert.Equal(model.Config, inferred.Config);
        using var built = ArchitectureDeduction.BuildAndLoad(inferred, sd);
        AssertSameWeights(model, built);
    }

    public static TheoryData<string> SegmenterVariants() => new("micro", "no aux head", "patch 8, abs pos, shared table, no layer scale");

    private static SegmentationConfig SegmenterVariant(string name) => name switch
    {
        "micro" => SegmentationConfig.Micro(numClasses: 5),
        "no aux head" => SegmentationConfig.Micro(numClasses: 3) with { UseAuxHead = false },
        "patch 8, abs pos, shared table, no layer scale" => SegmentationConfig.Micro() with
        {
            Backbone = SegmentationConfig.Micro().Backbone with
            {
                ImgSize = 32, PatchSize = 8, UseAbsPosEmb = true, UseRelPosBias = false, UseSharedRelPosBias = true, InitValues = 0,
            },
        },
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    /// <summary>A segmenter with random weights and BatchNorm statistics (so that a mixed-up BN key would show).</summary>
    private static BeitSegmenter RandomSegmenter(SegmentationConfig config, int seed)
    {
        manual_seed(seed);
        var model = new BeitSegmenter(config);
        using var _ = no_grad();
        var sd = model.state_dict();
        foreach (var key in sd.Keys.Where(k => k.EndsWith(".running_var", StringComparison.Ordinal)).ToList())
        {
            var bn = key[..^"running_var".Length];
            foreach (var p in new[] { "weight", "bias", "running_mean", "running_var" })
                sd[bn + p].copy_(rand_like(sd[bn + p]) * 0.5 + 0.75);
        }
        return model;
    }

    /// <summary>
    /// Segmenters (mmseg keys, DDP 'module.' prefix): every architecture field is recovered (heads from
    /// the tables, out_indices by depth, pool scales by count), the built model holds the same weights
    /// and computes the same logits and class map.
    /// </summary>
    [Theory]
    [MemberData(nameof(SegmenterVariants))]
    public void FreshSegmenterVariantsAreRecoveredExactlyAndReload(string variant)
    {
        using var scope = NewDisposeScope();
        var config = SegmenterVariant(variant);
        using var model = RandomSegmenter(config, seed: 14);
        var sd = model.state_dict().ToDictionary(kv => "module." + kv.Key, kv => kv.Value);

        var inferred = ArchitectureDeduction.Deduce(sd);
        Assert.Equal(ModelKind.Segmenter, inferred.Kind);
        // Without an auxiliary head its width is not in the weights: the record's default (256) is kept.
        var expected = config.UseAuxHead ? config : config with { AuxChannels = new SegmentationConfig().AuxChannels };
        Assert.Equal(expected, Assert.IsType<SegmentationConfig>(inferred.Config)); // value equality, lists included
        Assert.Equal(JsonSerializer.SerializeToElement(expected, ModelJson.Options).GetRawText(), inferred.ConfigJson.GetRawText());

        var defaulted = new[] { "backbone.norm_eps", "backbone.qk_scale", "backbone.drop_rate", "backbone.attn_drop_rate", "backbone.drop_path_rate",
            "out_indices", "pool_scales", "dropout_ratio", "align_corners", "aux_in_index", "aux_loss_weight", "ignore_index" }.ToList();
        if (config.Backbone.InitValues > 0) defaulted.Add("backbone.init_values");
        if (!config.UseAuxHead) defaulted.Add("aux_channels");
        Assert.Equal(defaulted.Order(), inferred.DefaultedFields.Order());
        Assert.Contains(inferred.Notes, n => n.StartsWith("backbone.num_heads = 2: columns of backbone.", StringComparison.Ordinal));
        Assert.Contains(inferred.Notes, n => n.StartsWith("out_indices = [0,1,2,3] (default", StringComparison.Ordinal));
        Assert.Contains(inferred.Notes, n => n.StartsWith("pool_scales = [1,2,3,6] (default", StringComparison.Ordinal));
        Assert.Contains(inferred.Notes, n => n.StartsWith($"use_aux_head = {(config.UseAuxHead ? "true" : "false")}: ", StringComparison.Ordinal));

        using var built = (BeitSegmenter)ArchitectureDeduction.BuildAndLoad(inferred, sd);
        AssertSameWeights(model, built);
        model.eval();
        built.eval();
        using var _ = inference_mode();
        var img = config.Backbone.ImgSize;
        var x = randn(2, 3, img, img);
        Assert.True(model.forward(x).Equals(built.forward(x)), "logits differ");
        Assert.True(model.Predict(x).Equals(built.Predict(x)), "class maps differ");
    }

    /// <summary>Overrides use the SegmentationConfig schema and nest into the backbone; they are reported, and validated.</summary>
    [Fact]
    public void SegmenterOverridesMergeIntoTheSegmentationConfig()
    {
        using var scope = NewDisposeScope();
        var config = SegmentationConfig.Micro();
        using var model = RandomSegmenter(config, seed: 15);
        var sd = model.state_dict();

        var inferred = ArchitectureDeduction.Deduce(sd, Json("""{"backbone": {"drop_path_rate": 0.1}, "aux_in_index": 3, "ignore_index": 0}"""));
        Assert.Equal(config with { Backbone = config.Backbone with { DropPathRate = 0.1 }, AuxInIndex = 3, IgnoreIndex = 0 }, inferred.Config);
        Assert.DoesNotContain("backbone.drop_path_rate", inferred.DefaultedFields);
        Assert.DoesNotContain("aux_in_index", inferred.DefaultedFields);
        Assert.Contains("out_indices", inferred.DefaultedFields);
        Assert.Contains(inferred.Notes, n => n.StartsWith("backbone.drop_path_rate = 0.1: from the config override", StringComparison.Ordinal));
        using var built = ArchitectureDeduction.BuildAndLoad(inferred, sd);
        AssertSameWeights(model, built);

        // Out of range for 4 blocks (the base recipe's indices), and unknown keys (the old mmseg-style shape).
        Assert.Throws<ArgumentException>(() => ArchitectureDeduction.Deduce(sd, Json("""{"out_indices": [3, 5, 7, 11]}""")));
        Assert.Throws<InvalidDataException>(() => ArchitectureDeduction.Deduce(sd, Json("""{"decode_head": {"channels": 32}}""")));
    }

    /// <summary>mmseg variants the segmenter cannot represent are named, not loaded half-way.</summary>
    [Theory]
    [InlineData("aux head with 2 convs", "2 convs")]
    [InlineData("aux head concat_input", "concat")]
    [InlineData("aux classes differ", "classes")]
    [InlineData("decode in_channels differ", "input widths")]
    [InlineData("three levels", "4 levels")]
    [InlineData("patch-16 necks missing fpn2", "backbone.fpn2.0.weight")]
    [InlineData("patch 14", "patch sizes 16 and 8")]
    public void UnsupportedSegmenterVariantsAreCheckpointExceptions(string variant, string message)
    {
        using var scope = NewDisposeScope();
        using var model = RandomSegmenter(SegmentationConfig.Micro(), seed: 16);
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value);
        void Conv(string name, long outC, long inC, int k)
        {
            sd[name + ".conv.weight"] = zeros(outC, inC, k, k);
            foreach (var p in new[] { "weight", "bias", "running_mean", "running_var" }) sd[$"{name}.bn.{p}"] = zeros(outC);
        }
        void Remove(string prefix)
        {
            foreach (var k in sd.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList()) sd.Remove(k);
        }
        switch (variant)
        {
            case "aux head with 2 convs": Conv("auxiliary_head.convs.1", 16, 16, 3); break;
            case "aux head concat_input": Conv("auxiliary_head.conv_cat", 16, 32 + 16, 3); break;
            case "aux classes differ": sd["auxiliary_head.conv_seg.weight"] = zeros(7, 16, 1, 1); sd["auxiliary_head.conv_seg.bias"] = zeros(7); break;
            case "decode in_channels differ": Conv("decode_head.lateral_convs.0", 32, 64, 1); break;
            case "three levels": Remove("decode_head.lateral_convs.2."); Remove("decode_head.fpn_convs.2."); break;
            case "patch-16 necks missing fpn2": Remove("backbone.fpn2."); break;
            case "patch 14": sd["backbone.patch_embed.proj.weight"] = zeros(32, 3, 14, 14); break;
            default: throw new ArgumentOutOfRangeException(nameof(variant));
        }
        var e = Assert.Throws<CheckpointException>(() => ArchitectureDeduction.Deduce(sd));
        Assert.Contains(message, e.Message);
    }

    // ------------------------------------------------------------ failures

    [Fact]
    public void UnknownDictIsACheckpointExceptionNamingSampleKeys()
    {
        using var scope = NewDisposeScope();
        var sd = new Dictionary<string, Tensor> { ["encoder.layer.0.weight"] = zeros(2), ["pooler.dense.bias"] = zeros(2) };
        var e = Assert.Throws<CheckpointException>(() => ArchitectureDeduction.Deduce(sd));
        Assert.Contains("encoder.layer.0.weight", e.Message);
        Assert.Contains("pooler.dense.bias", e.Message);
        // The expected models come from the catalogue's entries, in the words the single switch used to say.
        Assert.Equal(
            "Cannot tell which model this state dict holds (2 tensors; e.g. encoder.layer.0.weight, pooler.dense.bias). Expected a BEiT v2 " +
            "classifier or backbone (cls_token, patch_embed.proj.weight, blocks.N.*), a pretraining checkpoint (… + lm_head), a VQ-KD " +
            "tokenizer (encoder.*, decoder.*, quantize.*), a CLIP image tower (visual.*), a DINO ViT (blocks.N.attn.qkv.bias) or an mmseg " +
            "segmenter (backbone.*, decode_head.*).", e.Message);
        Assert.Throws<CheckpointException>(() => ArchitectureDeduction.Deduce(new Dictionary<string, Tensor>()));
    }

    [Fact]
    public void BadOverridesAreRejected()
    {
        using var scope = NewDisposeScope();
        using var model = new BeitVisionTransformer(VitConfig.Micro());
        var sd = model.state_dict();
        var unknown = Assert.Throws<InvalidDataException>(() => ArchitectureDeduction.Deduce(sd, Json("""{"num_head": 4}""")));
        Assert.Contains("num_head", unknown.Message);
        Assert.Throws<InvalidDataException>(() => ArchitectureDeduction.Deduce(sd, Json("[1, 2]")));
        Assert.Throws<InvalidDataException>(() => ArchitectureDeduction.Deduce(sd, Json("""{"num_heads": "two"}""")));
        Assert.Throws<ArgumentException>(() => ArchitectureDeduction.Deduce(sd, Json("""{"num_heads": 3}""")));

        // An override of a value the weights fix is accepted, flagged, and then fails to load.
        var wrong = ArchitectureDeduction.Deduce(sd, Json("""{"depth": 3}"""));
        Assert.Contains(wrong.Notes, n => n.StartsWith("depth = 3: from the config override", StringComparison.Ordinal) && n.Contains("weights say 2"));
        Assert.Throws<CheckpointException>(() => ArchitectureDeduction.BuildAndLoad(wrong, sd));
    }

    // ------------------------------------------------------------ helpers

    private static Dictionary<string, Tensor> Weights(FixtureDescriptor f) => CheckpointKeys.Normalize(StateDictFile.Read(f.WeightsPth));

    private static JsonElement Json(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }

    /// <summary>The override that supplies the fixture's values of the fields the weights do not record.</summary>
    private static JsonElement? OverrideFor(FixtureDescriptor f)
    {
        var fields = NeedsOverride[f.Stem];
        if (fields.Length == 0) return null;
        var root = new System.Text.Json.Nodes.JsonObject();
        foreach (var path in fields)
        {
            var parts = path.Split('.');
            var node = root;
            var value = f.Config;
            foreach (var part in parts[..^1])
            {
                node = (System.Text.Json.Nodes.JsonObject)(node[part] ??= new System.Text.Json.Nodes.JsonObject());
                value = value.GetProperty(part);
            }
            node[parts[^1]] = System.Text.Json.Nodes.JsonNode.Parse(value.GetProperty(parts[^1]).GetRawText());
        }
        return JsonSerializer.SerializeToElement(root);
    }

    /// <summary>The fixture config through our record (all fields, numbers and list-valued sizes normalised).</summary>
    private static JsonElement Normalised(FixtureDescriptor f)
    {
        object config = f.Kind switch
        {
            "vit_cls" => ModelJson.Deserialize<VitConfig>(f.Config, f.Stem),
            "mim" => ModelJson.Deserialize<MimConfig>(f.Config, f.Stem),
            "vqkd" => ModelJson.Deserialize<VqkdConfig>(f.Config, f.Stem),
            "clip_teacher" => ModelJson.Deserialize<ClipVisionConfig>(f.Config, f.Stem),
            "dino_teacher" => ModelJson.Deserialize<DinoConfig>(f.Config, f.Stem),
            _ => throw new ArgumentException(f.Kind),
        };
        return JsonSerializer.SerializeToElement(config, config.GetType(), ModelJson.Options);
    }

    /// <summary>Paths (a.b) where <paramref name="actual"/> differs from <paramref name="expected"/>, except <paramref name="skip"/>.</summary>
    private static List<string> Differences(JsonElement expected, JsonElement actual, string[] skip, string path = "")
    {
        var diffs = new List<string>();
        foreach (var p in expected.EnumerateObject())
        {
            var at = path.Length == 0 ? p.Name : path + "." + p.Name;
            if (skip.Contains(at)) continue;
            if (!actual.TryGetProperty(p.Name, out var a)) { diffs.Add(at); continue; }
            var e = p.Value;
            if (e.ValueKind == JsonValueKind.Object && a.ValueKind == JsonValueKind.Object) diffs.AddRange(Differences(e, a, skip, at));
            else if (e.ValueKind == JsonValueKind.Number && a.ValueKind == JsonValueKind.Number) { if (e.GetDouble() != a.GetDouble()) diffs.Add(at); }
            else if (e.GetRawText() != a.GetRawText()) diffs.Add(at);
        }
        return diffs;
    }

    /// <summary>|got − ref| ≤ 1e-5·max(1, max|ref|) elementwise.</summary>
    private static void AssertClose(string name, Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        var refMax = expected.abs().max().item<float>();
        var atol = 1e-5 * Math.Max(1.0, refMax);
        var diff = (actual.to_type(float64) - expected.to_type(float64)).abs().max().item<double>();
        Assert.True(diff <= atol, $"{name}: max |diff| {diff:g3} > {atol:g3}");
    }

    private static void AssertSameWeights(nn.Module expected, nn.Module actual)
    {
        var want = expected.state_dict();
        var got = actual.state_dict();
        Assert.Equal(want.Keys.Order(), got.Keys.Order());
        foreach (var (key, value) in want)
            Assert.True(value.Equals(got[key]), $"{key} differs");
    }
}
