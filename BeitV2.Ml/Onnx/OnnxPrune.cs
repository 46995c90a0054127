using Onnx;

namespace BeitV2.Ml.Onnx;

/// <summary>
/// Removes what no graph output depends on: nodes none of whose outputs is needed, then initializers no remaining
/// node reads. The segmenter writes the whole trunk (shared code) but reads only the blocks up to its last out index;
/// blocks after it would otherwise be computed and their weights loaded for nothing.
/// </summary>
public static class OnnxPrune
{
    /// <summary>Prunes <paramref name="model"/> in place (its nodes are in topological order, as the builder writes them); returns the number of nodes removed.</summary>
    public static int Unused(ModelProto model)
    {
        var graph = model.Graph;
        var needed = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var keep = new List<NodeProto>(graph.Node.Count);
        for (var i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (!node.Output.Any(o => o.Length > 0 && needed.Contains(o))) continue;
            keep.Add(node);
            foreach (var input in node.Input) if (input.Length > 0) needed.Add(input);
        }
        var removed = graph.Node.Count - keep.Count;
        keep.Reverse();
        graph.Node.Clear();
        graph.Node.AddRange(keep);
        var initializers = graph.Initializer.Where(t => needed.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.AddRange(initializers);
        return removed;
    }
}
