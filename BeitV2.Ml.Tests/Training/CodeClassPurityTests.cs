using BeitV2.Ml.Training;

namespace BeitV2.Ml.Tests.Training;

public class CodeClassPurityTests
{
    [Fact]
    public void CreditsEachCodeWithItsMajorityLabel()
    {
        var purity = new CodeClassPurity(codebookSize: 4, classes: 2);
        purity.Add([0, 0], 0);
        purity.Add([0, 1], 0);
        purity.Add([2, 2], 1);
        purity.Add([2, 1], 1);
        // code 0: three patches of class 0; code 1: one of each; code 2: three of class 1 → (3 + 1 + 3) / 8.
        Assert.Equal(7.0 / 8, purity.Compute().Purity, 12);
    }

    [Fact]
    public void CodesThatIgnoreTheImage_AreAsPureAsTheMostFrequentClass()
    {
        var purity = new CodeClassPurity(4, 3);
        long[] labels = [0, 0, 0, 1, 2, 2];
        foreach (var label in labels) purity.Add([1, 3, 3], label);
        Assert.Equal(0.5, purity.Compute().Purity, 12);
    }

    [Fact]
    public void ShuffledLabels_AreTheBaselineOfCodesThatKnowTheClass()
    {
        var purity = new CodeClassPurity(10, 10);
        for (var i = 0; i < 500; i++) purity.Add([i % 10, i % 10, i % 10], i % 10); // every code names its class
        var (pure, shuffled) = purity.Compute(seed: 7);
        Assert.Equal(1.0, pure, 12);
        Assert.InRange(shuffled, 0.1, 0.4); // 50 images per code, ten classes: about 0.1 plus chance
        Assert.Equal(shuffled, purity.Compute(seed: 7).ShuffledPurity); // seeded
        Assert.Equal(500, purity.Images);
    }

    [Fact]
    public void IgnoresLabelsOutsideTheClasses()
    {
        var purity = new CodeClassPurity(2, 2);
        purity.Add([0], 255);
        Assert.Equal(0, purity.Images);
        Assert.Equal((0.0, 0.0), purity.Compute());
    }
}
