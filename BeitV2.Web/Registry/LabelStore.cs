using System.Collections.Concurrent;

namespace BeitV2.Web.Registry;

/// <summary>Class names of classifiers and segmenters, read once per model from its package.</summary>
public sealed class LabelStore
{
    private readonly ModelRegistry registry;
    private readonly ConcurrentDictionary<string, IReadOnlyList<string>> cache = new();

    public LabelStore(ModelRegistry registry)
    {
        this.registry = registry;
        registry.ModelChanged += id => cache.TryRemove(id, out _);
    }

    /// <summary>The label of a class, or "class N" when the model has no label list.</summary>
    public string Label(string modelId, int classIndex)
    {
        var labels = cache.GetOrAdd(modelId, id => registry.Labels(id) ?? Array.Empty<string>());
        return classIndex >= 0 && classIndex < labels.Count ? labels[classIndex] : $"class {classIndex}";
    }

    /// <summary>The ImageNet-1k class names shipped with the service (line k = class k).</summary>
    public static IReadOnlyList<string> ImageNet1k { get; } = LoadImageNet();

    private static IReadOnlyList<string> LoadImageNet()
    {
        using var stream = typeof(LabelStore).Assembly.GetManifestResourceStream("BeitV2.Web.imagenet1k-classes.txt")
                           ?? throw new InvalidOperationException("The ImageNet-1k class list is missing from the build.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
    }
}
