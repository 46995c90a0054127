using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Data;
using BeitV2.Ml.Imaging;
using BeitV2.Ml.Imaging.Rendering;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Web.Datasets;
using BeitV2.Web.Infrastructure;
using BeitV2.Web.Registry;
using TorchSharp;

namespace BeitV2.Web.Evaluation;

/// <summary>
/// <c>evaluate --grid</c>: a segmenter's masks next to the truth for the first scenes of a split (the scenes
/// <c>--max-images</c> would score first), as the model sees them: each scene and its mask brought to the model's input size
/// by its evaluation transform, the prediction at that size, upscaled in <see cref="SegmentationGrid"/>.
/// </summary>
public sealed class SegmentationGridMaker(DatasetCatalog datasets, ModelRegistry registry, ComputeDevices devices)
{
    /// <summary>Most scenes in one grid.</summary>
    public const int MaxScenes = 32;

    /// <summary>Magnification of each cell.</summary>
    public const int Scale = 4;

    /// <summary>Renders <paramref name="scenes"/> scenes of a checked segmenter target on a training device leased for it.</summary>
    /// <exception cref="InvalidOperationException">the model is not a segmenter, its preprocessing cannot be applied, or the split has no images.</exception>
    public SegmentationGridPicture Render(EvaluationTarget target, int scenes, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scenes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(scenes, MaxScenes);
        using var lease = devices.LeaseTrainingDevice();
        var device = torch.device(lease.Device);
        var (trainSet, testSet) = target.Split == ModelEvaluator.Train
            ? datasets.Open(target.Dataset.Id, scenes, 1, seed)
            : datasets.Open(target.Dataset.Id, 1, scenes, seed);
        var images = (target.Split == ModelEvaluator.Train ? trainSet : testSet)
                     ?? throw new InvalidOperationException($"'{target.Dataset.Id}' has no held-out images.");
        if (images.Count == 0) throw new InvalidOperationException($"The {target.Split} split of '{target.Dataset.Id}' has no images.");

        using var package = ModelPackage.Load(registry.PackageDirectory(target.Model.Id), device);
        var model = package.Module as BeitSegmenter
                    ?? throw new InvalidOperationException($"A {package.Kind} model draws no masks; the grid needs a segmenter.");
        model.eval();
        var (transform, _, _) = ModelEvaluator.EvaluationTransform(package);
        int size = transform.Size, count = Math.Min(scenes, images.Count);
        var rows = new SegmentationGrid.Scene[count];
        var inputs = new float[count * 3 * size * size];
        for (int i = 0; i < count; i++)
        {
            var sample = images.Get(i);
            var prepared = transform.Apply(sample, new Random(0)); // evaluation transforms draw nothing
            prepared.Pixels.CopyTo(inputs, i * 3 * size * size);
            var truth = prepared.Mask ?? throw new InvalidOperationException("The segmenter's transform returned no mask.");
            // The picture the model is given, before normalisation: the transform's resize.
            rows[i] = new SegmentationGrid.Scene(PilResize.Resize(sample.Image, size, size), truth, []);
        }

        long[] predicted;
        using (lease.Gate.Enter())
        using (torch.NewDisposeScope())
        {
            using var batch = torch.tensor(inputs, [count, 3, size, size]);
            predicted = model.Predict(batch.to(device), (size, size)).cpu().data<long>().ToArray();
        }
        int plane = size * size;
        for (int i = 0; i < count; i++)
            rows[i] = rows[i] with { Prediction = [.. predicted.AsSpan(i * plane, plane).ToArray().Select(v => (int)v)] };

        int classes = model.Config.NumClasses;
        var names = target.Dataset.ClassNames.Count == classes ? target.Dataset.ClassNames
            : registry.Labels(target.Model.Id) is { } labels && labels.Count == classes ? labels
            : [.. Enumerable.Range(0, classes).Select(k => $"class {k}")];
        var legend = Enumerable.Range(0, classes)
            .Select(k => (names[k], $"#{Palette.Default[k].R:X2}{Palette.Default[k].G:X2}{Palette.Default[k].B:X2}")).ToList();
        return new SegmentationGridPicture(SegmentationGrid.RenderPng(rows, classes, Scale), count, size * Scale, legend);
    }
}
