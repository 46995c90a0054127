using System.Security.Cryptography;
using System.Text;
using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Models;

/// <summary>
/// Fresh models (torch.manual_seed, then the constructor) are those the code built before the classifier, the MIM model
/// and the segmentation backbone shared one trunk (main at 9976dd1): fingerprints Σₖ k·Σ|p| over the state dict's
/// random tensors (dim ≥ 2) in order, and SHA-256 of the state-dict and parameter names in order. Equal values mean the
/// same names, the same order and the same random draws in the same order, so our training runs start where they did.
/// The fingerprints depend on libtorch's CPU generator: recapture them when TorchSharp's libtorch changes.
/// </summary>
/// <remarks>Model constructors draw from the process-wide generator, so these run while no other test does.</remarks>
[Collection(GlobalGeneratorCollection.Name)]
public sealed class SeededConstructionTests
{
    public static TheoryData<string> SeededCases() => new(SeededBefore.Keys);

    private static readonly Dictionary<string, (double Fingerprint, string Keys, string Parameters, int Count)> SeededBefore = new()
    {
        ["vit_micro"] = (7774.89061665008, "F4732BAF406205B7E5BA454300AA6FBE4826F1026EB4BC196499C59614FC41CE", "F4732BAF406205B7E5BA454300AA6FBE4826F1026EB4BC196499C59614FC41CE", 39),
        ["vit_micro_abs"] = (6872.366596708203, "B912686D5E77DD1134E6683FE97F24248817BAA284088EED21C521140FE7A906", "B912686D5E77DD1134E6683FE97F24248817BAA284088EED21C521140FE7A906", 34),
        ["vit_micro_shared"] = (7643.277923330084, "ECAE64C4D7A708BCEBEA2870AE79E00A3E44ED0C7EB306748D93172B878D91D8", "ECAE64C4D7A708BCEBEA2870AE79E00A3E44ED0C7EB306748D93172B878D91D8", 36),
        ["mim_micro"] = (20709.077934443878, "616B9D6BD841073F96D59726FFC63C8AB17007273EB2ED224DE2B4358131158A", "616B9D6BD841073F96D59726FFC63C8AB17007273EB2ED224DE2B4358131158A", 84),
        ["mim_micro_own_head"] = (23109.50602111256, "4E0E00EC0E14DE2692524F1E10957FDDC428E24C744D5B05533688BD6E2BA6B1", "4E0E00EC0E14DE2692524F1E10957FDDC428E24C744D5B05533688BD6E2BA6B1", 93),
        ["seg_micro"] = (971596.8360558408, "1ACFDDCB629FC28A2E4A88D994DB84B6243A5632A927035E8FE276CDBD8F9E4D", "BE4FA7D657B1FF1189B8841203B8DF230B914ADC254389CEECA0FC540EE1DE58", 160),
        ["seg_micro_abs_p8"] = (898590.494363952, "49BAA192E663EF886C0FCE88476C3C471B28F38F177C2E03826625665101F267", "190D22BF9CF916AFAC665055B6FD4545D554625CEE0DFB8C47EF6547A645BFB7", 152),
    };

    private static nn.Module Build(string name)
    {
        switch (name)
        {
            case "vit_micro": manual_seed(123); return new BeitVisionTransformer(VitConfig.Micro());
            case "vit_micro_abs":
                manual_seed(124);
                return new BeitVisionTransformer(VitConfig.Micro() with
                {
                    UseAbsPosEmb = true, UseRelPosBias = false, UseMeanPooling = false, InitValues = 0, DropPathRate = 0.1,
                });
            case "vit_micro_shared":
                manual_seed(125);
                return new BeitVisionTransformer(VitConfig.Micro(numClasses: 0) with { UseSharedRelPosBias = true, UseRelPosBias = false });
            case "mim_micro": manual_seed(126); return new BeitMim(MimConfig.Micro());
            case "mim_micro_own_head":
                manual_seed(127);
                return new BeitMim(MimConfig.Micro() with
                {
                    SharedLmHead = false, UseAbsPosEmb = true, UseSharedRelPosBias = false, UseRelPosBias = true, DropPathRate = 0.2,
                });
            case "seg_micro": manual_seed(128); return new BeitSegmenter(SegmentationConfig.Micro());
            case "seg_micro_abs_p8":
                manual_seed(129);
                return new BeitSegmenter(SegmentationConfig.Micro() with
                {
                    Backbone = SegmentationConfig.Micro().Backbone with { UseAbsPosEmb = true, PatchSize = 8, ImgSize = 32 },
                });
            default: throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    [Theory]
    [MemberData(nameof(SeededCases))]
    public void SeededConstruction_IsThatOfBeforeTheTrunkWasShared(string name)
    {
        using var model = Build(name);
        var (fingerprint, keysHash, parametersHash, count) = SeededBefore[name];
        var state = model.state_dict();
        var keys = state.Keys.ToList();
        Assert.True(count == keys.Count && keysHash == Hash(keys), "state-dict names or order changed:\n" + string.Join("\n", keys));
        var parameters = model.named_parameters().Select(p => p.name).ToList();
        Assert.True(parametersHash == Hash(parameters), "parameter names or order changed:\n" + string.Join("\n", parameters));
        double actual = 0;
        var k = 0;
        foreach (var (_, t) in state)
        {
            k++;
            if (!t.is_floating_point() || t.dim() < 2) continue;
            using var sum = t.detach().to_type(ScalarType.Float64).abs().sum();
            actual += k * sum.item<double>();
        }
        // Float64 sums of the same float32 draws: only summation order (vector width) may move the last digits.
        Assert.InRange(actual, fingerprint * (1 - 1e-9), fingerprint * (1 + 1e-9));
    }

    private static string Hash(IEnumerable<string> names) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", names))));
}
