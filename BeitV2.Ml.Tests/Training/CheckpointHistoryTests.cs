using BeitV2.Ml.Training;

namespace BeitV2.Ml.Tests.Training;

public sealed class CheckpointHistoryTests
{
    private static void Fake(string root, string name, long? step = null)
    {
        var dir = Directory.CreateDirectory(Path.Combine(root, name)).FullName;
        if (step is { } s)
            File.WriteAllText(Path.Combine(dir, TrainingCheckpoint.StateFile), $$"""{"stage":"finetune","step":{{s}}}""");
    }

    [Fact]
    public void List_OrdersByStep_IgnoresIncompleteFolders_AndReadsTheOldLatestFolder()
    {
        using var dir = new TempDirectory();
        Fake(dir.Path, TrainingCheckpoint.FolderName(120), 120);
        Fake(dir.Path, TrainingCheckpoint.FolderName(40), 40);
        Fake(dir.Path, "checkpoint-latest", 7);           // written by an earlier build
        Fake(dir.Path, TrainingCheckpoint.FolderName(200)); // a save that never completed: no state.json
        Fake(dir.Path, "checkpoint-00000300.staging", 300); // not a checkpoint name

        var list = TrainingCheckpoint.List(dir.Path);
        Assert.Equal([7L, 40L, 120L], list.Select(c => c.Step));
        Assert.Equal(Path.Combine(dir.Path, "checkpoint-00000120"), TrainingCheckpoint.FindLatest(dir.Path));
        Assert.Null(TrainingCheckpoint.FindLatest(Path.Combine(dir.Path, "missing")));
    }

    [Fact]
    public void Prune_KeepsTheNewest_AndNeverTheLastOne()
    {
        using var dir = new TempDirectory();
        foreach (var s in new long[] { 10, 20, 30, 40 }) Fake(dir.Path, TrainingCheckpoint.FolderName(s), s);
        TrainingCheckpoint.Prune(dir.Path, 2);
        Assert.Equal([30L, 40L], TrainingCheckpoint.List(dir.Path).Select(c => c.Step));
        TrainingCheckpoint.Prune(dir.Path, 0); // at least one always stays
        Assert.Equal([40L], TrainingCheckpoint.List(dir.Path).Select(c => c.Step));
    }
}
