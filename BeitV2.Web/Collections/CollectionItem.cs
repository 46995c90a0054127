using System.Text.Json.Serialization;

namespace BeitV2.Web.Collections;

/// <summary>
/// One line of <c>items.jsonl</c>: where an item came from and what it is. Short names: the file has a line per image
/// (70,000 for Fashion-MNIST).
/// </summary>
public sealed record CollectionItem
{
    /// <summary>Class index into the collection's labels; -1 when unlabelled.</summary>
    [JsonPropertyName("l")] public int Label { get; init; } = -1;
    /// <summary>Size of the original image.</summary>
    [JsonPropertyName("w")] public int Width { get; init; }
    [JsonPropertyName("h")] public int Height { get; init; }
    /// <summary>Index in the dataset's order (<see cref="DatasetItems"/>); -1 for an uploaded image.</summary>
    [JsonPropertyName("d")] public int DatasetIndex { get; init; } = -1;
    /// <summary>An uploaded image's file name (null for dataset items and uploads without one).</summary>
    [JsonPropertyName("f"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? FileName { get; init; }

    [JsonIgnore] public bool Uploaded => DatasetIndex < 0;
}
