using BeitV2.Web.Registry;

namespace BeitV2.Web.Tests.Registry;

/// <summary>New model ids are short: kind, a word or two of the dataset (or name), 6 hex digits.</summary>
public sealed class ModelIdsTests
{
    [Theory]
    [InlineData("classifier", "fashion-mnist", "the served classifier: fine-tune from the MIM backbone", "^classifier-fashion-[0-9a-f]{6}$")]
    [InlineData("segmenter", "fashion-mnist-seg", "UperNet segmenter", "^segmenter-fashion-[0-9a-f]{6}$")]
    [InlineData("classifier", "my-photos-1a2b3c", "x", "^classifier-my-photos-[0-9a-f]{6}$")]
    [InlineData("classifier", null, "beitv2_base_patch16_224_pt1k_ft21kto1k.pth", "^classifier-beitv2-base-[0-9a-f]{6}$")]
    [InlineData("tokenizer", null, "Tokenizer!", "^tokenizer-[0-9a-f]{6}$")]
    [InlineData("backbone", null, "***", "^backbone-[0-9a-f]{6}$")]
    public void New_IsKindWhatAndAShortHash(string kind, string? dataset, string name, string pattern)
    {
        var id = ModelIds.New(kind, dataset, name, _ => false);
        Assert.Matches(pattern, id);
        Assert.True(id.Length <= 32, id);
    }

    [Fact]
    public void New_DrawsAgain_WhileTheIdIsTaken()
    {
        var asked = new List<string>();
        var id = ModelIds.New("classifier", "fashion-mnist", "n", candidate => { asked.Add(candidate); return asked.Count < 3; });
        Assert.Equal(3, asked.Count);
        Assert.Equal(asked[^1], id);
    }
}
