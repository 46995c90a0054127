using BeitV2.Web.Hosting;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Tests.Api;
using Microsoft.Extensions.Logging.Abstractions;

namespace BeitV2.Web.Tests.Storage;

/// <summary>Interrupted writes leave hidden folders and staging files; the service removes them when it starts.</summary>
public sealed class LeftoverSweepTests
{
    private const string Guid1 = "0123456789abcdef0123456789abcdef";

    // Leftovers, planted the way the writers name them.
    private static readonly string[] Leftovers =
    [
        "tmp/dataset-" + Guid1 + ".zip",
        "tmp/import-" + Guid1 + ".pth",
        "datasets/.pets-ab12cd.extract-" + Guid1 + "/cats/1.png",
        "datasets/.deleted-old-ab12cd-" + Guid1 + "/cats/1.png",
        "datasets/gone-ab12cd.json",                                   // description of a dataset whose folder is gone
        "datasets/half-ab12cd/cats/1.png",                             // folder of an upload that never got its description
        "models/.deleted-vit-ab12cd-" + Guid1 + "/weights.safetensors",
        "models/.vit-ab12cd.tmp-" + Guid1 + "/weights.safetensors",
        "models/.vit-ab12cd.old-" + Guid1 + "/weights.safetensors",
        "models/.seed-vit-ab12cd-" + Guid1 + "/weights.safetensors",
        "models/defaults.json.tmp-" + Guid1,
        "jobs/.deleted-job-0123456789ab-" + Guid1 + "/job.json",
        "jobs/job-0123456789ab/job.json.tmp-" + Guid1,
        "jobs/job-0123456789ab/checkpoints/.checkpoint-00000004.tmp-" + Guid1 + "/weights.safetensors",
        "jobs/job-0123456789ab/checkpoints/finetune/.checkpoint-00000002.old-" + Guid1 + "/state.json",
    ];

    // What must stay.
    private static readonly string[] Kept =
    [
        "datasets/pets-ab12cd/cats/1.png",
        "datasets/pets-ab12cd.json",
        "datasets/pets-ab12cd/.hidden-but-data.png",
        "models/defaults.json",
        "jobs/job-0123456789ab/job.json",
        "jobs/job-0123456789ab/metrics.jsonl",
        "jobs/job-0123456789ab/checkpoints/checkpoint-00000002/state.json",
    ];

    [Fact]
    public void TheServiceStarting_RemovesTheLeftovers_AndKeepsTheData()
    {
        using var data = new TempDirectory();
        Plant(data.Path, Leftovers);
        Plant(data.Path, Kept);
        File.WriteAllText(Path.Combine(data.Path, "models", "defaults.json"), "{}");
        File.WriteAllText(Path.Combine(data.Path, "jobs", "job-0123456789ab", "job.json"),
            """{"id":"job-0123456789ab","type":"finetune","dataset":"fashion-mnist","status":"succeeded","createdAt":"2026-01-01T00:00:00Z"}""");

        using (var host = new ApiHost(new Dictionary<string, string?> { ["Storage:DataDirectory"] = data.Path }))
        using (host.CreateClient())
        {
            foreach (var path in Leftovers) Assert.False(Exists(data.Path, TopOf(path)), $"{TopOf(path)} is still there");
            foreach (var path in Kept) Assert.True(Exists(data.Path, path), $"{path} was removed");
            host.AssertNoServerErrors();
        }
    }

    [Fact]
    public void WithSharedStorage_YoungStagingEntriesStay_RenamedAwayOnesGoAtOnce()
    {
        using var data = new TempDirectory();
        Plant(data.Path, Leftovers);
        var now = DateTime.UtcNow;
        var old = "datasets/.pets-ab12cd.extract-" + Guid1;
        Directory.SetLastWriteTimeUtc(Path.Combine(data.Path, old), now.AddHours(-2));

        var removed = LeftoverSweep.Sweep(data.Path, TimeSpan.FromHours(1), now, NullLogger.Instance).Select(r => r.Path.Replace('\\', '/')).ToList();

        Assert.Contains(old, removed);
        Assert.Contains("models/.deleted-vit-ab12cd-" + Guid1, removed);
        Assert.Contains("models/.vit-ab12cd.old-" + Guid1, removed);
        Assert.True(Exists(data.Path, "tmp/dataset-" + Guid1 + ".zip"), "a young upload of another server was removed");
        Assert.True(Exists(data.Path, "models/.vit-ab12cd.tmp-" + Guid1), "a young staging folder was removed");
        Assert.True(Exists(data.Path, "datasets/half-ab12cd"), "a young dataset folder was removed");
    }

    private static void Plant(string root, IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, new byte[1000]);
        }
    }

    // The leftover itself: the first hidden or staging segment of the planted path (the file for flat ones).
    private static string TopOf(string path)
    {
        var parts = path.Split('/');
        for (var i = 1; i < parts.Length; i++)
            if (parts[i].StartsWith('.') || parts[i].Contains(".tmp-") || parts[i].StartsWith("half-")) return string.Join('/', parts[..(i + 1)]);
        return path;
    }

    private static bool Exists(string root, string path) => File.Exists(Path.Combine(root, path)) || Directory.Exists(Path.Combine(root, path));
}
