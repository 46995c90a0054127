using System.Globalization;
using BeitV2.Ml.Checkpoints;
using BeitV2.Web.Datasets;
using BeitV2.Web.Registry;

namespace BeitV2.Web.Domains;

/// <summary>The <see cref="ModelDomain"/> a model trained on a dataset gets: the dataset's name and classes, the kind of image it holds, a line in words.</summary>
public static class DatasetDomains
{
    /// <summary>The domain of a model of <paramref name="apiKind"/> (with input side <paramref name="inputSize"/>) trained on <paramref name="dataset"/>.</summary>
    /// <param name="quality">its measured quality, when there is one.</param>
    public static ModelDomain For(DatasetInfo dataset, string apiKind, int inputSize, ModelQuality? quality = null)
    {
        var classes = dataset.ClassNames.Count > 0 ? dataset.ClassNames : null;
        var (inputKind, what) = dataset.Id switch
        {
            DatasetCatalog.FashionMnist => ("28×28 greyscale photos of one clothing item (shoes, bags, tops, trousers…), centred on a black background",
                "small greyscale Fashion-MNIST clothing photos on black"),
            DatasetCatalog.FashionMnistSeg => ("greyscale scenes of several Fashion-MNIST clothing items on a black background",
                "scenes of Fashion-MNIST clothing items on black"),
            _ => ($"images like those of the uploaded dataset '{dataset.Name}'", $"images like those of '{dataset.Name}'"),
        };
        var n = classes?.Count ?? dataset.Classes;
        var description = apiKind switch
        {
            ApiModelKinds.Classifier => $"Names which of {n} classes one of the {what} shows; any other photo still gets one of these {n} names, which then means little.",
            ApiModelKinds.Segmenter => $"Marks which pixels of {what} belong to which of its {n} classes; on other photos its masks mean little.",
            ApiModelKinds.Tokenizer => $"Turns {what} into visual tokens; on other photos the tokens mean little.",
            _ => $"Embeds {what}; for other photos the embeddings and their distances mean little.",
        };
        return new ModelDomain
        {
            Dataset = dataset.Name, DatasetId = dataset.Id, Classes = classes, InputKind = inputKind, InputSize = inputSize,
            Description = description, Quality = quality,
        };
    }

    /// <summary>
    /// The headline quality in a training job's final metrics: <c>accuracy</c> for a classifier (with <c>valSamples</c>), <c>mIoU</c>
    /// for a segmenter; null when they hold neither (pretraining, a tokenizer).
    /// </summary>
    public static ModelQuality? Quality(IReadOnlyDictionary<string, double> metrics, string apiKind, DatasetInfo dataset)
    {
        const string split = "test";   // the trainers validate on the held-out split
        if (apiKind == ApiModelKinds.Classifier && metrics.TryGetValue("accuracy", out var accuracy) && double.IsFinite(accuracy))
            return new ModelQuality("accuracy", Math.Round(accuracy, 4), split, dataset.Name,
                metrics.TryGetValue("valSamples", out var n) && n > 0 ? (int)n : null);
        if (apiKind == ApiModelKinds.Segmenter && metrics.TryGetValue("mIoU", out var miou) && double.IsFinite(miou))
            return new ModelQuality("mIoU", Math.Round(miou, 4), split, dataset.Name);
        return null;
    }

    /// <summary>The metrics in a lineage note "metrics: a=1, b=2" (how jobs and the pipeline record their final numbers), or none.</summary>
    public static IReadOnlyDictionary<string, double> MetricsInNotes(ModelLineage? lineage)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var note in lineage?.Notes ?? [])
        {
            if (!note.StartsWith("metrics: ", StringComparison.Ordinal)) continue;
            foreach (var pair in note["metrics: ".Length..].Split(", "))
            {
                var parts = pair.Split('=', 2);
                if (parts.Length == 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) result[parts[0].Trim()] = v;
            }
        }
        return result;
    }
}
