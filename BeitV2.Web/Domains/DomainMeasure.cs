using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Domain;
using BeitV2.Ml.Serving;
using BeitV2.Web.Datasets;
using BeitV2.Web.Registry;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace BeitV2.Web.Domains;

/// <summary>How well one model's out-of-domain score separates in-domain images from photos.</summary>
/// <param name="InDomain">in-domain test images scored (none of them fitted or calibrated on).</param>
/// <param name="Photos">photos scored whole.</param>
/// <param name="Crops">random crops (with flips) of the photos.</param>
/// <param name="AurocPhotos">AUROC of the distance, photos against in-domain images (1: every photo further than every in-domain image).</param>
/// <param name="AurocCrops">the same with the crops.</param>
/// <param name="FlaggedInDomain">share of in-domain images past the warning threshold.</param>
/// <param name="FlaggedPhotos">share of photos past it.</param>
/// <param name="FlaggedCrops">share of crops past it.</param>
public sealed record DomainMeasurement(string Model, string Dataset, int InDomain, int Photos, int Crops, double AurocPhotos, double? AurocCrops,
    double FlaggedInDomain, double FlaggedPhotos, double? FlaggedCrops, double Seconds);

/// <summary>
/// Measures a model's stored out-of-domain fit: the served model's distances of in-domain test images (the second half of
/// the test split: the fit calibrated on the first) against those of photos (whole, and as random crops with flips),
/// as AUROC and the share flagged.
/// </summary>
public sealed class DomainMeasure(ModelRegistry registry, DatasetCatalog datasets, DomainFitter fitter)
{
    /// <exception cref="InvalidOperationException">the model has no out-of-domain fit, or no photos were found.</exception>
    public DomainMeasurement Run(string modelId, int inDomainImages, IReadOnlyList<string> photoPaths, int cropsPerPhoto, int seed, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var info = registry.Get(modelId);
        var directory = registry.PackageDirectory(modelId);
        var manifest = ModelPackage.ReadManifest(directory);
        var fit = ModelPackage.ReadDomainFit(directory, manifest)
                  ?? throw new InvalidOperationException($"'{modelId}' has no out-of-domain fit; run fit-domain first.");
        if (photoPaths.Count == 0) throw new InvalidOperationException("No photos to measure with.");
        var datasetId = manifest.Domain?.DatasetId ?? (info.Kind == ApiModelKinds.Segmenter ? DatasetCatalog.FashionMnistSeg : DatasetCatalog.FashionMnist);
        var (_, test) = datasets.Open(datasetId, 1, null, seed);
        if (test is not { Count: > 1 }) throw new InvalidOperationException($"'{datasetId}' has no test split to measure on.");

        using var model = ServedModelLoader.Load(directory, fitter.Serving).Model;
        double[] Distances(IEnumerable<Image<Rgb24>> images) => ServedFeatures.Compute(model, images, ct).Select(f => fit.Distance(f)).ToArray();

        var inIndices = DomainFitter.Spread((test.Count / 2, test.Count), inDomainImages);
        var inDomain = Distances(inIndices.Select(i => test.Get(i).Image.ToImage()));
        var photos = Distances(photoPaths.Select(Load));
        var random = new Random(seed);
        var crops = cropsPerPhoto > 0 ? Distances(photoPaths.SelectMany(p => Enumerable.Range(0, cropsPerPhoto).Select(_ => RandomCrop(Load(p), random)))) : [];
        var threshold = fit.Calibration.ThresholdDistance;
        double Flagged(double[] d) => d.Length == 0 ? 0 : (double)d.Count(x => x > threshold) / d.Length;
        return new DomainMeasurement(modelId, datasetId, inDomain.Length, photos.Length, crops.Length,
            Auroc.Of(photos, inDomain), crops.Length > 0 ? Auroc.Of(crops, inDomain) : null,
            Flagged(inDomain), Flagged(photos), crops.Length > 0 ? Flagged(crops) : null, Math.Round(clock.Elapsed.TotalSeconds, 1));
    }

    /// <summary>A photo decoded as an upload is: RGB, EXIF orientation applied.</summary>
    private static Image<Rgb24> Load(string path)
    {
        var image = Image.Load<Rgb24>(path);
        image.Mutate(x => x.AutoOrient());
        return image;
    }

    /// <summary>A random crop of 10–100 % of the area with an aspect ratio of 3:4 to 4:3, flipped left-right half the time (the photo is disposed).</summary>
    private static Image<Rgb24> RandomCrop(Image<Rgb24> photo, Random random)
    {
        int w = photo.Width, h = photo.Height;
        var area = w * h * (0.1 + 0.9 * random.NextDouble());
        var aspect = Math.Exp(Math.Log(3.0 / 4) + random.NextDouble() * (Math.Log(4.0 / 3) - Math.Log(3.0 / 4)));
        var cw = Math.Clamp((int)Math.Round(Math.Sqrt(area * aspect)), 1, w);
        var ch = Math.Clamp((int)Math.Round(Math.Sqrt(area / aspect)), 1, h);
        var x = random.Next(0, w - cw + 1);
        var y = random.Next(0, h - ch + 1);
        var flip = random.Next(2) == 1;
        photo.Mutate(m =>
        {
            m.Crop(new Rectangle(x, y, cw, ch));
            if (flip) m.Flip(FlipMode.Horizontal);
        });
        return photo;
    }
}
