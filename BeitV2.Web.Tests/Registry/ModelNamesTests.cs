using BeitV2.Web.Registry;

namespace BeitV2.Web.Tests.Registry;

/// <summary>Short names for pickers: what the model is, not how it was made.</summary>
public sealed class ModelNamesTests
{
    [Theory]
    [InlineData("VQ-KD tokenizer distilled from the teacher (fashion-small)", "VQ-KD tokenizer")]
    [InlineData("UperNet segmenter from the served classifier (MIM, then fine-tuned) (fashion-small)", "UperNet segmenter")]
    [InlineData("the served classifier: fine-tune from the MIM backbone on the whole training split (fashion-small)", "The served classifier")]
    [InlineData("finetune job-20261205-abc", "Finetune job-20261205-abc")]
    [InlineData("beitv2_base_patch16_224_pt1k_ft21kto1k_and_more_words.pth", "Beitv2_base_patch16_224_pt1k_ft…")]
    [InlineData("a very long descriptive model name that keeps going and going", "A very long descriptive model…")]
    public void Short_IsDerivedFromTheName(string name, string expected) => Assert.Equal(expected, ModelNames.Short(name));

    [Fact]
    public void Short_PrefersAStoredOne() => Assert.Equal("My model", ModelNames.Short("whatever it is called", " My model "));
}
