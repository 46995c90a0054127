using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>
/// Copies a state dict into a module by exact key lookup (our state-dict names are the official
/// ones). Missing keys, unexpected keys and shape mismatches are collected and reported together.
/// Values are copied into the module's own tensors, so device and dtype follow the module.
/// </summary>
public static class StateDictLoader
{
    /// <param name="module">the target.</param>
    /// <param name="source">the weights (already normalised: prefixes stripped, indices dropped).</param>
    /// <param name="what">a name for error messages (e.g. "vit_cls model").</param>
    /// <param name="ignoreUnexpected">keys of the source to ignore silently (e.g. a pretraining head when fine-tuning).</param>
    /// <param name="allowMissing">keys of the model that may stay at their initial value.</param>
    /// <param name="hint">appended to the error message if the load fails (see <see cref="CheckpointException"/>).</param>
    /// <remarks>Missing keys are listed in the model's order; unexpected keys, whose file order is not
    /// known (pickled dicts are read into hash tables), in ordinal order, so reports are reproducible.</remarks>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, Tensor> source, string what,
        Func<string, bool>? ignoreUnexpected = null, Func<string, bool>? allowMissing = null, string? hint = null)
    {
        var target = module.state_dict();
        var missing = target.Keys.Where(k => !source.ContainsKey(k) && !(allowMissing?.Invoke(k) ?? false)).ToList();
        var unexpected = source.Keys.Where(k => !target.ContainsKey(k) && !(ignoreUnexpected?.Invoke(k) ?? false))
            .Order(StringComparer.Ordinal).ToList();
        var shapes = new List<string>();
        foreach (var (k, t) in target)
            if (source.TryGetValue(k, out var s) && !s.shape.SequenceEqual(t.shape))
                shapes.Add($"{k} (checkpoint [{string.Join(",", s.shape)}], model [{string.Join(",", t.shape)}])");
        if (missing.Count > 0 || unexpected.Count > 0 || shapes.Count > 0)
            throw new CheckpointException(what, missing, unexpected, shapes, hint);

        using var _ = no_grad();
        foreach (var (k, t) in target)
            if (source.TryGetValue(k, out var s))
                t.copy_(s);
    }
}
