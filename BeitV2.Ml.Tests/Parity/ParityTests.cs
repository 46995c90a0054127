using static TorchSharp.torch;

namespace BeitV2.Ml.Tests.Parity;

/// <summary>
/// Data-driven parity with the official BEiT v2 code: every fixture descriptor in the fixture
/// folder, loaded once through the official .pth loader and once from safetensors; every output
/// listed in its io compared at the strict tolerance (integers exactly). They run on
/// <see cref="ParityDevice"/> (<c>BEITV2_TEST_DEVICE</c>, default cpu), always in float32.
/// </summary>
[Trait("Category", "Parity")]
public sealed class ParityTests
{
    private static readonly Dictionary<string, IParityRunner> Runners = new()
    {
        ["vit_cls"] = new VitClsRunner(),
        ["mim"] = new MimRunner(),
        ["vqkd"] = new VqkdRunner(),
        ["clip_teacher"] = new ClipTeacherRunner(),
        ["dino_teacher"] = new DinoTeacherRunner(),
    };

    public static TheoryData<string, WeightSource> Cases()
    {
        var data = new TheoryData<string, WeightSource>();
        foreach (var f in FixtureDescriptor.All())
        {
            data.Add(f.Stem, WeightSource.OfficialPth);
            data.Add(f.Stem, WeightSource.Safetensors);
        }
        return data;
    }

    [Fact]
    public void FixtureFolderHoldsModelFixtures() =>
        Assert.NotEmpty(FixtureDescriptor.All());

    [Theory]
    [MemberData(nameof(Cases))]
    public void OutputsMatchReference(string stem, WeightSource source)
    {
        using var scope = NewDisposeScope();
        var fixture = FixtureDescriptor.Load(stem);
        Assert.True(Runners.TryGetValue(fixture.Kind, out var runner), $"No runner for model kind '{fixture.Kind}'");
        var io = fixture.LoadIo();
        var outputs = runner.Run(fixture, source, io);
        var failures = new List<string>();
        foreach (var spec in fixture.Io.Where(x => x.Role == "output"))
        {
            if (!outputs.TryGetValue(spec.Name, out var actual))
            {
                failures.Add($"{spec.Name}: not computed by the {fixture.Kind} runner");
                continue;
            }
            try { TensorAssert.Matches(spec, io[spec.Name], actual); }
            catch (Exception e) { failures.Add(e.Message); }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
