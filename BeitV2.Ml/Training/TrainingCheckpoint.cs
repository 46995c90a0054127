using System.Text.Json;
using System.Text.Json.Serialization;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>Counters and bookkeeping of a training checkpoint (<c>state.json</c>).</summary>
public sealed record TrainingCheckpointState
{
    public const int CurrentVersion = 1;

    public int FormatVersion { get; init; } = CurrentVersion;
    /// <summary>The trainer that wrote it ("tokenizer", "pretrain", "probe", "finetune", "segmentation").</summary>
    public required string Stage { get; init; }
    /// <summary>Optimiser steps completed; a resumed run does step number <c>Step</c> (0-based) next.</summary>
    public long Step { get; init; }
    /// <summary>Epoch of the next step (0-based).</summary>
    public int Epoch { get; init; }
    public int StepsPerEpoch { get; init; }
    /// <summary>Length of the lr schedule of the plan (the schedule position is <see cref="Step"/>).</summary>
    public long PlannedSteps { get; init; }
    /// <summary>The seed the run started from.</summary>
    public long Seed { get; init; }
    /// <summary>Schedule value of the last step done.</summary>
    public double LearningRate { get; init; }
    /// <summary>Per-epoch accumulators of the epoch in progress (running loss sums, code histograms, …).</summary>
    public Dictionary<string, double[]> EpochState { get; init; } = new();
    /// <summary>Mixed precision of the run that wrote it ("fp32", "bf16", "fp16"); null in checkpoints written before mixed precision existed.</summary>
    public string? Precision { get; init; }
    /// <summary>fp16 runs: the dynamic loss scale and its growth tracker, so a resumed run continues with them.</summary>
    public double? LossScale { get; init; }
    public int? LossScaleGrowthTracker { get; init; }
    /// <summary>Latest metrics at save time (informational).</summary>
    public Dictionary<string, double> Metrics { get; init; } = new();
    public DateTimeOffset SavedUtc { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>
/// A training checkpoint folder: <c>weights.safetensors</c> (the trained module's full state dict,
/// buffers included), <c>manifest.json</c> when the module is a library model (so the folder is also
/// a model package that <see cref="ModelPackage.Load"/> reads), <c>optimizer.bin</c> (TorchSharp's
/// optimiser state: per-parameter step counts and Adam moments, group hyper-parameters),
/// <c>rng.bin</c> (torch's CPU generator state) and <c>state.json</c>.
/// </summary>
/// <remarks>
/// Saving is atomic: everything is written and fsynced in a sibling staging folder, which then
/// replaces the target with renames, so a crash leaves either the old or the new checkpoint.
/// The CUDA generator state is not saved: on a GPU, dropout / drop path after a resume draw other
/// numbers than an uninterrupted run would.
/// </remarks>
public static class TrainingCheckpoint
{
    public const string WeightsFile = "weights.safetensors";
    public const string OptimizerFile = "optimizer.bin";
    public const string RngFile = "rng.bin";
    public const string StateFile = "state.json";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void Save(string directory, nn.Module module, OptimizerHelper? optimizer, TrainingCheckpointState state, bool includeRng = true)
    {
        DurableFiles.WriteDirectory(directory, staging =>
        {
            var weights = Path.Combine(staging, WeightsFile);
            DurableFiles.SaveWeights(module, weights);
            TryWriteManifest(module, staging, weights);
            if (optimizer is not null)
            {
                var path = Path.Combine(staging, OptimizerFile);
                using (var stream = File.Create(path))
                using (var writer = new BinaryWriter(stream))
                {
                    optimizer.save_state_dict(writer);
                    writer.Flush();
                    stream.Flush(flushToDisk: true);
                }
            }
            if (includeRng)
            {
                using var rng = get_rng_state();
                DurableFiles.WriteAllBytes(Path.Combine(staging, RngFile), rng.data<byte>().ToArray());
            }
            DurableFiles.WriteAllBytes(Path.Combine(staging, StateFile), JsonSerializer.SerializeToUtf8Bytes(state, Json));
        });
    }

    /// <summary>The folder name of the checkpoint taken after <paramref name="step"/> steps (<c>checkpoint-00000123</c>): names sort by step.</summary>
    public static string FolderName(long step) => $"checkpoint-{step:D8}";

    /// <summary>
    /// The complete checkpoints in <paramref name="checkpointDirectory"/>, oldest first. A folder counts once its
    /// <c>state.json</c> exists (the staging folders of an interrupted save never match). A <c>checkpoint-latest</c>
    /// folder of an older build is included with the step its state records.
    /// </summary>
    public static IReadOnlyList<SavedCheckpoint> List(string checkpointDirectory)
    {
        if (!Directory.Exists(checkpointDirectory)) return [];
        var found = new List<SavedCheckpoint>();
        foreach (var dir in Directory.EnumerateDirectories(checkpointDirectory, "checkpoint-*"))
        {
            var stateFile = Path.Combine(dir, StateFile);
            if (!File.Exists(stateFile)) continue;
            var name = Path.GetFileName(dir);
            long step;
            if (name == "checkpoint-latest")
            {
                try { step = ReadState(dir).Step; }
                catch (CheckpointException) { continue; }
            }
            else if (!long.TryParse(name.AsSpan("checkpoint-".Length), System.Globalization.NumberStyles.None,
                         System.Globalization.CultureInfo.InvariantCulture, out step)) continue;
            found.Add(new SavedCheckpoint(step, dir, File.GetLastWriteTimeUtc(stateFile)));
        }
        return found.OrderBy(c => c.Step).ThenBy(c => c.SavedAtUtc).ToList();
    }

    /// <summary>The newest complete checkpoint (highest step), or null.</summary>
    public static string? FindLatest(string checkpointDirectory) => List(checkpointDirectory).LastOrDefault()?.Path;

    /// <summary>Deletes all but the newest <paramref name="keep"/> checkpoints (never the newest one).</summary>
    public static void Prune(string checkpointDirectory, int keep)
    {
        var all = List(checkpointDirectory);
        foreach (var old in all.Take(Math.Max(0, all.Count - Math.Max(1, keep))))
        {
            try { Directory.Delete(old.Path, recursive: true); }
            catch (IOException) { } // still in use (e.g. being read for an output model): the next prune retries
            catch (UnauthorizedAccessException) { }
        }
    }

    public static TrainingCheckpointState ReadState(string directory)
    {
        var path = Path.Combine(directory, StateFile);
        if (!File.Exists(path)) throw new CheckpointException($"No {StateFile} in '{directory}': not a training checkpoint.");
        TrainingCheckpointState? state;
        try
        {
            state = JsonSerializer.Deserialize<TrainingCheckpointState>(File.ReadAllBytes(path), Json);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not a valid training checkpoint state: {e.Message}", e);
        }
        if (state is null) throw new CheckpointException($"{path} is empty.");
        if (state.FormatVersion > TrainingCheckpointState.CurrentVersion)
            throw new CheckpointException($"{path} has format version {state.FormatVersion}; this build reads up to {TrainingCheckpointState.CurrentVersion}.");
        return state;
    }

    /// <summary>
    /// Restores the module's state dict (strictly: same keys and shapes), the optimiser state (the
    /// optimiser must have been built with the same parameter groups) and, when asked, torch's CPU
    /// generator state.
    /// </summary>
    public static TrainingCheckpointState Load(string directory, nn.Module module, OptimizerHelper? optimizer, bool restoreRng = true,
        string? expectedStage = null)
    {
        var state = ReadState(directory);
        if (expectedStage is not null && state.Stage != expectedStage)
            throw new CheckpointException($"'{directory}' is a '{state.Stage}' training checkpoint, not a '{expectedStage}' one.");
        var weights = Path.Combine(directory, WeightsFile);
        if (!File.Exists(weights)) throw new CheckpointException($"The training checkpoint '{directory}' has no {WeightsFile}.");
        var sd = Safetensors.LoadStateDict(weights);
        try
        {
            StateDictLoader.Load(module, sd, $"{state.Stage} training checkpoint");
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
        if (optimizer is not null)
        {
            var path = Path.Combine(directory, OptimizerFile);
            if (!File.Exists(path)) throw new CheckpointException($"The training checkpoint '{directory}' has no {OptimizerFile}.");
            try
            {
                using var stream = File.OpenRead(path);
                using var reader = new BinaryReader(stream);
                optimizer.load_state_dict(reader);
            }
            catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException)
            {
                throw new CheckpointException(
                    $"The optimiser state in '{path}' does not fit this optimiser (other parameter groups or model?): {e.Message}", e);
            }
        }
        if (restoreRng)
        {
            var path = Path.Combine(directory, RngFile);
            if (File.Exists(path))
            {
                using var rng = tensor(File.ReadAllBytes(path), dtype: ScalarType.Byte);
                set_rng_state(rng);
            }
        }
        return state;
    }

    private static void TryWriteManifest(nn.Module module, string staging, string weights)
    {
        if (ModelCatalog.Default.EntryOf(module) is not { } entry) return; // not a library model (e.g. a probe head): weights only
        ModelPackage.WriteManifest(entry, entry.ConfigOf(module), staging, weights);
    }

}

/// <summary>A complete training checkpoint on disk.</summary>
public sealed record SavedCheckpoint(long Step, string Path, DateTime SavedAtUtc);
