using System.Text.Json;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Vqkd;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// The JSON of model configs (the <c>config</c> object of every package manifest) is a file format: packages written
/// before the configs shared a base record (<see cref="VitShapeConfig"/>, <see cref="VitTrunkConfig"/>) must read and
/// write back to the same text, property order included. The golden strings were written by the code before that
/// change (main at 9976dd1); the bundled default models are packages written by an even earlier build.
/// </summary>
public sealed class ConfigJsonCompatibilityTests
{
    private static readonly JsonSerializerOptions Compact = new(ModelJson.Options) { WriteIndented = false };

    /// <summary>name → JSON written by the code before the shared config base (compact, ModelJson options).</summary>
    private static readonly Dictionary<string, string> Golden = new()
    {
        ["VitConfig.Base"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"num_classes":1000,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["VitConfig.Large"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"num_classes":1000,"embed_dim":1024,"depth":24,"num_heads":16,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":1E-05,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["VitConfig.Tiny"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"num_classes":1000,"embed_dim":192,"depth":12,"num_heads":3,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["VitConfig.Small"] = """
            {"img_size":28,"patch_size":4,"in_chans":3,"num_classes":10,"embed_dim":96,"depth":6,"num_heads":3,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.05,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["VitConfig.Micro"] = """
            {"img_size":32,"patch_size":8,"in_chans":3,"num_classes":10,"embed_dim":32,"depth":2,"num_heads":2,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["MimConfig.Base"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"vocab_size":8192,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.1,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":true,"init_std":0.02,"early_layers":9,"head_layers":2,"shared_lm_head":true,"use_checkpoint":false}
            """,
        ["MimConfig.Large"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"vocab_size":8192,"embed_dim":1024,"depth":24,"num_heads":16,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.1,"norm_eps":1E-06,"init_values":1E-05,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":true,"init_std":0.02,"early_layers":21,"head_layers":2,"shared_lm_head":true,"use_checkpoint":false}
            """,
        ["MimConfig.Tiny"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"vocab_size":8192,"embed_dim":192,"depth":12,"num_heads":3,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.1,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":true,"init_std":0.02,"early_layers":9,"head_layers":2,"shared_lm_head":true,"use_checkpoint":false}
            """,
        ["MimConfig.Small"] = """
            {"img_size":28,"patch_size":4,"in_chans":3,"vocab_size":512,"embed_dim":96,"depth":6,"num_heads":3,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.05,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":true,"init_std":0.02,"early_layers":4,"head_layers":2,"shared_lm_head":true,"use_checkpoint":false}
            """,
        ["MimConfig.Micro"] = """
            {"img_size":32,"patch_size":8,"in_chans":3,"vocab_size":32,"embed_dim":32,"depth":4,"num_heads":2,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":true,"init_std":0.02,"early_layers":2,"head_layers":1,"shared_lm_head":true,"use_checkpoint":false}
            """,
        ["MimConfig.Small.ToBackbone"] = """
            {"img_size":28,"patch_size":4,"in_chans":3,"num_classes":10,"embed_dim":96,"depth":6,"num_heads":3,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["SegmentationConfig.Base"] = """
            {"backbone":{"img_size":512,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.15,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false},"out_indices":[3,5,7,11],"num_classes":150,"channels":768,"pool_scales":[1,2,3,6],"aux_channels":256,"aux_in_index":2,"dropout_ratio":0.1,"align_corners":false,"use_aux_head":true,"aux_loss_weight":0.4,"ignore_index":255}
            """,
        ["SegmentationConfig.Large"] = """
            {"backbone":{"img_size":512,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":1024,"depth":24,"num_heads":16,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.2,"norm_eps":1E-06,"init_values":1E-06,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false},"out_indices":[7,11,15,23],"num_classes":150,"channels":1024,"pool_scales":[1,2,3,6],"aux_channels":256,"aux_in_index":2,"dropout_ratio":0.1,"align_corners":false,"use_aux_head":true,"aux_loss_weight":0.4,"ignore_index":255}
            """,
        ["SegmentationConfig.Micro"] = """
            {"backbone":{"img_size":64,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":32,"depth":4,"num_heads":2,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false},"out_indices":[0,1,2,3],"num_classes":5,"channels":32,"pool_scales":[1,2,3,6],"aux_channels":16,"aux_in_index":2,"dropout_ratio":0.1,"align_corners":false,"use_aux_head":true,"aux_loss_weight":0.4,"ignore_index":255}
            """,
        ["VitConfig.FromEmpty"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"num_classes":1000,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":false,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0,"attn_head_dim":null,"use_abs_pos_emb":true,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false}
            """,
        ["MimConfig.FromEmpty"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"vocab_size":8192,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06,"init_values":0,"attn_head_dim":null,"use_abs_pos_emb":true,"use_rel_pos_bias":false,"use_shared_rel_pos_bias":false,"init_std":0.02,"early_layers":6,"head_layers":2,"shared_lm_head":true,"use_checkpoint":false}
            """,
        ["SegmentationConfig.FromEmpty"] = """
            {"backbone":{"img_size":512,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0.15,"norm_eps":1E-06,"init_values":0.1,"attn_head_dim":null,"use_abs_pos_emb":false,"use_rel_pos_bias":true,"use_shared_rel_pos_bias":false,"use_mean_pooling":true,"init_scale":0.001,"use_checkpoint":false},"out_indices":[3,5,7,11],"num_classes":150,"channels":768,"pool_scales":[1,2,3,6],"aux_channels":256,"aux_in_index":2,"dropout_ratio":0.1,"align_corners":false,"use_aux_head":true,"aux_loss_weight":0.4,"ignore_index":255}
            """,
        ["DinoConfig.ViTB16"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06}
            """,
        ["DinoConfig.Small"] = """
            {"img_size":32,"patch_size":8,"in_chans":3,"num_classes":5,"embed_dim":32,"depth":2,"num_heads":2,"mlp_ratio":4,"qkv_bias":false,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06}
            """,
        ["DinoConfig.FromEmpty"] = """
            {"img_size":224,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06}
            """,
        ["DinoConfig.FromList"] = """
            {"img_size":96,"patch_size":16,"in_chans":3,"num_classes":0,"embed_dim":768,"depth":12,"num_heads":12,"mlp_ratio":4,"qkv_bias":true,"qk_scale":null,"drop_rate":0,"attn_drop_rate":0,"drop_path_rate":0,"norm_eps":1E-06}
            """,
    };

    private static object Make(string name) => name switch
    {
        "VitConfig.Base" => VitConfig.Base(),
        "VitConfig.Large" => VitConfig.Large(),
        "VitConfig.Tiny" => VitConfig.Tiny(),
        "VitConfig.Small" => VitConfig.Small(),
        "VitConfig.Micro" => VitConfig.Micro(),
        "VitConfig.FromEmpty" => new VitConfig(),
        "MimConfig.Base" => MimConfig.Base(),
        "MimConfig.Large" => MimConfig.Large(),
        "MimConfig.Tiny" => MimConfig.Tiny(),
        "MimConfig.Small" => MimConfig.Small(),
        "MimConfig.Micro" => MimConfig.Micro(),
        "MimConfig.FromEmpty" => new MimConfig(),
        "MimConfig.Small.ToBackbone" => MimConfig.Small().ToBackbone(10),
        "SegmentationConfig.Base" => SegmentationConfig.Base(),
        "SegmentationConfig.Large" => SegmentationConfig.Large(),
        "SegmentationConfig.Micro" => SegmentationConfig.Micro(),
        "SegmentationConfig.FromEmpty" => new SegmentationConfig(),
        "DinoConfig.ViTB16" => DinoConfig.ViTB16(),
        "DinoConfig.Small" => new DinoConfig { ImgSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2, NumClasses = 5, QkvBias = false },
        "DinoConfig.FromEmpty" => new DinoConfig(),
        "DinoConfig.FromList" => new DinoConfig { ImgSize = 96 },
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "no such golden config"),
    };

    public static TheoryData<string> GoldenNames() => new(Golden.Keys);

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void Config_WritesTheJsonOfBefore(string name)
    {
        var config = Make(name);
        Assert.Equal(Golden[name], JsonSerializer.Serialize(config, config.GetType(), Compact));
    }

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void JsonOfBefore_ReadsBackToTheSameConfigAndText(string name)
    {
        var expected = Make(name);
        var read = JsonSerializer.Deserialize(Golden[name], expected.GetType(), ModelJson.Options)!;
        Assert.Equal(expected, read);
        Assert.Equal(Golden[name], JsonSerializer.Serialize(read, read.GetType(), Compact));
    }

    /// <summary>A config that names no keys gets each reference class's defaults (qkv_bias differs between them).</summary>
    [Fact]
    public void EmptyJson_GivesEachClassItsOwnDefaults()
    {
        Assert.Equal(Golden["VitConfig.FromEmpty"], RoundTrip<VitConfig>("{}"));
        Assert.Equal(Golden["MimConfig.FromEmpty"], RoundTrip<MimConfig>("{}"));
        Assert.Equal(Golden["DinoConfig.FromEmpty"], RoundTrip<DinoConfig>("{}"));
        Assert.Equal(Golden["SegmentationConfig.FromEmpty"], RoundTrip<SegmentationConfig>("{}"));
        Assert.False(JsonSerializer.Deserialize<VitConfig>("{}", ModelJson.Options)!.QkvBias);
        Assert.True(JsonSerializer.Deserialize<MimConfig>("{}", ModelJson.Options)!.QkvBias);
        Assert.True(JsonSerializer.Deserialize<DinoConfig>("{}", ModelJson.Options)!.QkvBias);
    }

    public static TheoryData<string> BundledManifests() =>
        new(Directory.EnumerateFiles(Path.Combine(FixturePaths.RepoRoot, "BeitV2.Web", "DefaultModels"), "manifest.json", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(FixturePaths.RepoRoot, p)).Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(BundledManifests))]
    public void BundledManifestConfig_ReadsAndWritesBackUnchanged(string manifest)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(FixturePaths.RepoRoot, manifest)));
        var kind = doc.RootElement.GetProperty("kind").GetString();
        var element = doc.RootElement.GetProperty("config");
        var type = kind switch
        {
            "vit_cls" => typeof(VitConfig),
            "mim" => typeof(MimConfig),
            "segmenter" => typeof(SegmentationConfig),
            "vqkd" => typeof(VqkdConfig),
            _ => throw new InvalidDataException($"{manifest}: a kind this test does not know: {kind}"),
        };
        var config = element.Deserialize(type, ModelJson.Options)!;
        Assert.Equal(JsonSerializer.Serialize(element), JsonSerializer.Serialize(config, type, Compact));
    }

    private static string RoundTrip<T>(string json) =>
        JsonSerializer.Serialize(JsonSerializer.Deserialize<T>(json, ModelJson.Options), Compact);
}
