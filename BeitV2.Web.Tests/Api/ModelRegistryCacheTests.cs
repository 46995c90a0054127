using BeitV2.Ml.Models;
using BeitV2.Web.Configuration;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Tests.Api;

/// <summary>
/// The registry reads the models folder and <c>defaults.json</c> once and keeps them until its change token fires:
/// at once for its own writes, and for another server's writes to a shared folder before its next answer.
/// </summary>
public sealed class ModelRegistryCacheTests : IDisposable
{
    private readonly ApiHost host = new();
    private readonly ModelInfo first;
    private readonly ModelInfo second;

    public ModelRegistryCacheTests()
    {
        first = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "first");
        second = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "second", makeDefault: false);
    }

    public void Dispose() => host.Dispose();

    private ModelRegistry Registry => host.Registry;

    /// <summary>Another server on the same data folder.</summary>
    private ModelRegistry OtherServer() => new(host.Services.GetRequiredService<DataDirectory>(),
        Options.Create(new ModelsOptions { SeedDefaults = false }), NullLogger<ModelRegistry>.Instance);

    /// <summary>Dates the folder's last change an hour back, so a snapshot taken now trusts its timestamp (not "racily" new).</summary>
    private void Settle() => Directory.SetLastWriteTimeUtc(Registry.ModelsDirectory, DateTime.UtcNow.AddHours(-1));

    [Fact]
    public void DefaultsFile_IsReadOnce_NotOnEveryLookup()
    {
        Settle();
        Assert.Equal(first.Id, Registry.DefaultId(ApiModelKinds.Classifier));
        var token = Registry.GetChangeToken();

        // Rewritten in place (the registry itself never does this: it replaces the file by a rename, which the folder's
        // timestamp shows): lookups keep the defaults they read instead of reading the file again.
        var path = Path.Combine(Registry.ModelsDirectory, "defaults.json");
        var settled = Directory.GetLastWriteTimeUtc(Registry.ModelsDirectory);
        using (var file = new FileStream(path, FileMode.Truncate, FileAccess.Write))
        using (var writer = new StreamWriter(file)) writer.Write($$"""{"classifier": "{{second.Id}}"}""");
        Directory.SetLastWriteTimeUtc(Registry.ModelsDirectory, settled);
        for (var i = 0; i < 3; i++) Assert.Equal(first.Id, Registry.DefaultId(ApiModelKinds.Classifier));
        Assert.False(token.HasChanged);

        // Any entry added, renamed or removed in the folder moves its timestamp: the next lookup reads again.
        Directory.SetLastWriteTimeUtc(Registry.ModelsDirectory, DateTime.UtcNow);
        Assert.True(token.HasChanged);
        Assert.Equal(second.Id, Registry.DefaultId(ApiModelKinds.Classifier));
    }

    [Fact]
    public void OwnWrites_FireTheChangeToken_AndAreSeenAtOnce()
    {
        Settle();
        var token = Registry.GetChangeToken();
        var fired = 0;
        using var registration = token.RegisterChangeCallback(_ => Interlocked.Increment(ref fired), null);
        Assert.False(token.HasChanged);

        Registry.SetDefault(second.Id);
        Assert.Equal(1, fired);
        Assert.Equal(second.Id, Registry.DefaultId(ApiModelKinds.Classifier));
        Assert.True(Registry.Get(second.Id).IsDefault);

        var next = Registry.GetChangeToken();
        Registry.Delete(first.Id);
        Assert.True(next.HasChanged);
        Assert.Null(Registry.Find(first.Id));
    }

    [Fact]
    public void AnotherServerSharingTheFolder_SeesEveryChange_BeforeItsNextAnswer()
    {
        var other = OtherServer();
        Settle();
        Assert.Equal(first.Id, other.DefaultId(ApiModelKinds.Classifier));   // a settled snapshot: only the folder's timestamp tells

        Registry.SetDefault(second.Id);
        Assert.Equal(second.Id, other.DefaultId(ApiModelKinds.Classifier));
        Assert.True(other.Get(second.Id).IsDefault);

        Settle();
        Assert.NotNull(other.Find(first.Id));
        Registry.Delete(first.Id);
        Assert.Null(other.Find(first.Id));

        Settle();
        Assert.Single(other.List());   // "second" is left
        var third = host.Seed(new BeitVisionTransformer(VitConfig.Micro(numClasses: 3)), "third", makeDefault: false);
        Assert.Equal(third.Id, other.Get(third.Id).Id);
    }
}
