using System.Text;
using BeitV2.Ml.Checkpoints;
using BeitV2.Web.Infrastructure;

namespace BeitV2.Web.Tests.Storage;

/// <summary>
/// The file helpers under the crash-safety of the data folder: a directory can be fsynced (the rename of an atomic
/// write reaches the disk), atomic writes still replace their target, and a file created "once" is created exactly
/// once when several writers race, whole, with no temporary file left behind.
/// </summary>
public sealed class DurableWritesTests
{
    [Fact]
    public void ADirectory_CanBeFsynced_OnLinux()
    {
        using var folder = new TempDirectory();
        Assert.Equal(OperatingSystem.IsLinux(), DurableFiles.TryFsyncDirectory(folder.Path));
        // Best effort: a folder that is not there is no error for the writer.
        Assert.False(DurableFiles.TryFsyncDirectory(folder.Combine("missing")));
        DurableFiles.FsyncDirectory(folder.Combine("missing"));
    }

    [Fact]
    public void AtomicWrites_ReplaceTheTarget_AndLeaveNoTemporaryFile()
    {
        using var folder = new TempDirectory();
        var path = folder.File("state.json");
        AtomicFile.WriteAllText(path, "one");
        AtomicFile.WriteAllBytes(path, "two"u8);
        Assert.Equal("two", File.ReadAllText(path));
        DurableFiles.ReplaceFile(path, "three"u8.ToArray());
        Assert.Equal("three", File.ReadAllText(path));
        DurableFiles.WriteDirectory(folder.Combine("package"), staging => File.WriteAllText(Path.Combine(staging, "a"), "a"));
        DurableFiles.WriteDirectory(folder.Combine("package"), staging => File.WriteAllText(Path.Combine(staging, "b"), "b"));
        Assert.Equal(["b"], Directory.GetFiles(folder.Combine("package")).Select(f => Path.GetFileName(f)!).ToArray());
        Assert.Equal(["package", "state.json"], Directory.GetFileSystemEntries(folder.Path).Select(f => Path.GetFileName(f)!).Order().ToArray());
    }

    [Fact]
    public void CreateNew_UnderARace_CreatesTheFileOnce_AndNeverReplacesIt()
    {
        using var folder = new TempDirectory();
        var path = folder.File(".volume-id");
        const int writers = 8;
        using var gate = new Barrier(writers);
        var ids = Enumerable.Range(0, writers).Select(_ => Guid.NewGuid().ToString("N")).ToArray();
        var created = new bool[writers];
        var threads = Enumerable.Range(0, writers).Select(i => new Thread(() =>
        {
            gate.SignalAndWait();
            created[i] = DurableFiles.CreateNew(path, Encoding.ASCII.GetBytes(ids[i]));
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        var winner = Assert.Single(Enumerable.Range(0, writers), i => created[i]);
        Assert.Equal(ids[winner], File.ReadAllText(path));
        Assert.False(DurableFiles.CreateNew(path, "another"u8.ToArray()));
        Assert.Equal(ids[winner], File.ReadAllText(path));
        Assert.Equal([".volume-id"], Directory.GetFileSystemEntries(folder.Path).Select(f => Path.GetFileName(f)!).ToArray());
    }
}
