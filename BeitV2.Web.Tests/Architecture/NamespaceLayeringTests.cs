using System.Text.RegularExpressions;

namespace BeitV2.Web.Tests.Architecture;

/// <summary>
/// The host's namespaces form layers: the composition root (<c>Program</c>, <c>Hosting</c>) on top, endpoint groups
/// (<c>Api</c>) and the pipeline command below it, then jobs, inference, registry and datasets, with
/// <c>Infrastructure</c>, <c>Errors</c> and <c>Configuration</c> at the bottom. A cycle (Jobs → Pipeline → Jobs was
/// one) means two parts can no longer change or be tested apart, so none is allowed.
/// </summary>
public partial class NamespaceLayeringTests
{
    [GeneratedRegex(@"^namespace\s+(BeitV2\.Web(?:\.\w+)*)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    [GeneratedRegex(@"^using\s+(BeitV2\.Web(?:\.\w+)*)\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingLine();

    /// <summary><c>using static Namespace.Type;</c>: the namespace is all but the last name.</summary>
    [GeneratedRegex(@"^using\s+static\s+(BeitV2\.Web(?:\.\w+)*)\.\w+\s*;", RegexOptions.Multiline)]
    private static partial Regex UsingStaticLine();

    /// <summary>Namespace → the host namespaces its files import (from the sources, the way a reader sees them).</summary>
    private static Dictionary<string, HashSet<string>> Imports()
    {
        var root = Path.Combine(FixturePaths.RepoRoot, "BeitV2.Web");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file);
            if (rel.StartsWith("bin", StringComparison.Ordinal) || rel.StartsWith("obj", StringComparison.Ordinal)) continue;
            var text = File.ReadAllText(file);
            var ns = NamespaceLine().Match(text) is { Success: true } m ? m.Groups[1].Value : "BeitV2.Web";
            if (!graph.TryGetValue(ns, out var edges)) graph[ns] = edges = new HashSet<string>(StringComparer.Ordinal);
            foreach (Match u in UsingLine().Matches(text).Concat(UsingStaticLine().Matches(text)))
                if (u.Groups[1].Value != ns) edges.Add(u.Groups[1].Value);
        }
        return graph;
    }

    /// <summary>The namespaces reachable from <paramref name="start"/> through imports.</summary>
    private static HashSet<string> Reachable(Dictionary<string, HashSet<string>> graph, string start)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var todo = new Stack<string>(graph.GetValueOrDefault(start) ?? []);
        while (todo.TryPop(out var n))
            if (seen.Add(n))
                foreach (var next in graph.GetValueOrDefault(n) ?? []) todo.Push(next);
        return seen;
    }

    [Fact]
    public void No_host_namespace_imports_one_that_imports_it_back()
    {
        var graph = Imports();
        Assert.Contains("BeitV2.Web.Jobs", graph.Keys);
        Assert.Contains("BeitV2.Web.Pipeline", graph.Keys);
        // The program itself (no namespace) sits on top and imports the areas it wires together.
        Assert.Contains("BeitV2.Web.Api", graph["BeitV2.Web"]);
        var cycles = graph.Keys.Where(ns => Reachable(graph, ns).Contains(ns)).Order().ToList();
        Assert.True(cycles.Count == 0, "Namespaces on an import cycle: " + string.Join(", ", cycles));
    }

    [Fact]
    public void Jobs_do_not_know_the_pipeline_command()
    {
        // The pipeline builds on jobs (it runs them from the command line); jobs reach it only through IPipelineJobs.
        var graph = Imports();
        Assert.Contains("BeitV2.Web.Jobs", graph["BeitV2.Web.Pipeline"]);
        Assert.DoesNotContain("BeitV2.Web.Pipeline", Reachable(graph, "BeitV2.Web.Jobs"));
    }
}
