using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Tests.Api;

/// <summary>The one table from the catalogue's model kinds to the API's kinds.</summary>
public sealed class ApiModelKindsTests
{
    /// <summary>The Web's one table from catalogue kinds to API kinds covers every kind, and every API kind is reached.</summary>
    [Fact]
    public void ApiKindsMapEveryCatalogueKind()
    {
        Assert.Equal(ModelCatalog.Default.Kinds.Order(), ApiModelKinds.ModelKinds.Order());
        var reached = new HashSet<string>();
        foreach (var entry in ModelCatalog.Default.Entries)
            foreach (var name in entry.PresetNames)
                reached.Add(ApiModelKinds.Of(entry.Kind, entry.Describe(entry.Preset(name))));
        reached.Add(ApiModelKinds.Of(ModelKind.VitCls, ModelCatalog.Default[ModelKind.VitCls].Describe(VitConfig.Base(numClasses: 0))));
        Assert.Equal(ApiModelKinds.All.Order(), reached.Order());
        Assert.Equal(ApiModelKinds.Classifier, ApiModelKinds.Of(ModelKind.VitCls, new ModelShape("beit-vit", 224, 16, 768, 12, null, 10)));
        Assert.Equal(ApiModelKinds.Backbone, ApiModelKinds.Of(ModelKind.VitCls, new ModelShape("beit-vit", 224, 16, 768, 12, null, null)));
        Assert.Throws<CheckpointException>(() => ApiModelKinds.Of("toy", new ModelShape("toy", 8, 1, 4, 1, null, null)));
    }
}
