using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Teachers;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using System.Text.Json;

namespace BeitV2.Web.Registry;

/// <summary>The API-facing shape of a model (kind, architecture, sizes) derived from its package manifest.</summary>
public static class ModelDescription
{
    public sealed record Shape(string Kind, string Architecture, int ImageSize, int PatchSize, int EmbedDim, int Depth, int? CodebookSize, int? Classes);

    public static Shape Describe(string packageKind, JsonElement config)
    {
        switch (packageKind)
        {
            case ModelKind.VitCls:
            {
                var c = ModelJson.Deserialize<VitConfig>(config, packageKind);
                return new Shape(c.NumClasses > 0 ? ApiModelKinds.Classifier : ApiModelKinds.Backbone, "beit-vit",
                    c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, null, c.NumClasses > 0 ? c.NumClasses : null);
            }
            case ModelKind.Mim:
            {
                var c = ModelJson.Deserialize<MimConfig>(config, packageKind);
                return new Shape(ApiModelKinds.Pretrain, "beitv2-mim", c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, c.VocabSize, null);
            }
            case ModelKind.Vqkd:
            {
                var c = ModelJson.Deserialize<VqkdConfig>(config, packageKind);
                return new Shape(ApiModelKinds.Tokenizer, "vqkd", c.Encoder.ImgSize, c.Encoder.PatchSize, c.Encoder.EmbedDim, c.Encoder.Depth, c.NEmbed, null);
            }
            case ModelKind.ClipTeacher:
            {
                var c = ModelJson.Deserialize<ClipVisionConfig>(config, packageKind);
                return new Shape(ApiModelKinds.Teacher, "clip-vit", c.InputResolution, c.PatchSize, c.Width, c.Layers, null, null);
            }
            case ModelKind.DinoTeacher:
            {
                var c = ModelJson.Deserialize<DinoConfig>(config, packageKind);
                return new Shape(ApiModelKinds.Teacher, "dino-vit", c.ImgSize, c.PatchSize, c.EmbedDim, c.Depth, null, null);
            }
            case ModelKind.Segmenter:
            {
                var c = ModelJson.Deserialize<SegmentationConfig>(config, packageKind);
                return new Shape(ApiModelKinds.Segmenter, "beit-upernet", c.Backbone.ImgSize, c.Backbone.PatchSize, c.Backbone.EmbedDim,
                    c.Backbone.Depth, null, c.NumClasses);
            }
            default:
                throw new InvalidDataException($"Unknown model kind '{packageKind}'.");
        }
    }
}
