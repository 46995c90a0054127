using System.Text.Json;
using System.Text.RegularExpressions;
using BeitV2.Ml.Data;
using BeitV2.Web.Configuration;
using BeitV2.Web.Errors;
using BeitV2.Web.Infrastructure;
using Microsoft.Extensions.Options;

namespace BeitV2.Web.Datasets;

/// <summary>A dataset as the API lists it.</summary>
/// <param name="Kind">classification, segmentation or unlabelled.</param>
/// <param name="Images">Images of the training split (the whole set for uploads).</param>
/// <param name="Classes">Number of classes (0 for unlabelled data).</param>
/// <param name="Splits">Images per named split (built-in sets).</param>
public sealed record DatasetInfo(
    string Id,
    string Name,
    string Kind,
    int Images,
    int Classes,
    IReadOnlyList<string> ClassNames,
    bool BuiltIn,
    IReadOnlyDictionary<string, int>? Splits,
    DateTimeOffset? CreatedAt);

/// <summary><c>Storage:FashionMnistDirectory</c>: where the built-in Fashion-MNIST IDX files are looked for.</summary>
public sealed class DatasetOptions
{
    public string FashionMnistDirectory { get; set; } = FashionMnistDataset.DefaultDirectory;
}

/// <summary>
/// The datasets jobs can train on: the built-in <c>fashion-mnist</c> (classification) and
/// <c>fashion-mnist-seg</c> (segmentation scenes composed from it) when the IDX files exist, and the
/// uploaded archives under <c>{data}/datasets/{id}/</c> (described by <c>{id}.json</c> beside the folder).
/// </summary>
public sealed partial class DatasetCatalog
{
    public const string FashionMnist = "fashion-mnist";
    public const string FashionMnistSeg = "fashion-mnist-seg";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly string fashionDirectory;
    private readonly ILogger<DatasetCatalog> logger;
    private readonly Lock gate = new();
    private FashionMnistDataset? fashionTrain, fashionTest;
    private bool fashionProbed;

    public DatasetCatalog(DataDirectory data, IOptions<DatasetOptions> options, ILogger<DatasetCatalog> logger)
    {
        this.logger = logger;
        DatasetsDirectory = data.Sub("datasets");
        fashionDirectory = options.Value.FashionMnistDirectory;
    }

    public string DatasetsDirectory { get; }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex IdPattern();

    public IReadOnlyList<DatasetInfo> List()
    {
        var result = new List<DatasetInfo>();
        if (FashionSplits() is var (train, test))
        {
            result.Add(new DatasetInfo(FashionMnist, "Fashion-MNIST", "classification", train.Count, 10, FashionMnistDataset.Classes, true,
                new Dictionary<string, int> { ["train"] = train.Count, ["test"] = test.Count }, null));
            var seg = new FashionMnistSegmentationDataset(test);
            result.Add(new DatasetInfo(FashionMnistSeg, "Fashion-MNIST segmentation scenes", "segmentation", train.Count, seg.ClassNames.Count,
                seg.ClassNames, true, new Dictionary<string, int> { ["train"] = train.Count, ["test"] = test.Count }, null));
        }
        foreach (var file in Directory.EnumerateFiles(DatasetsDirectory, "*.json").Order(StringComparer.Ordinal))
        {
            var id = Path.GetFileNameWithoutExtension(file);
            if (!IdPattern().IsMatch(id) || !Directory.Exists(Path.Combine(DatasetsDirectory, id))) continue;
            try
            {
                if (JsonSerializer.Deserialize<DatasetInfo>(File.ReadAllText(file), Json) is { } info) result.Add(info);
            }
            catch (Exception e) when (e is JsonException or IOException)
            {
                logger.LogWarning("Skipping dataset {File}: {Message}", file, e.Message);
            }
        }
        return result;
    }

    public DatasetInfo? Find(string id) => List().FirstOrDefault(d => d.Id == id);

    public DatasetInfo Get(string id) => Find(id)
        ?? throw new NotFoundException($"No dataset with id '{id}'. GET /api/v1/datasets lists them.");

    /// <summary>Extracts an uploaded zip as a new dataset.</summary>
    /// <exception cref="DatasetException">The archive is unsafe, unreadable or has no supported layout.</exception>
    public DatasetInfo Add(Stream zip, string name, ArchiveLimits? limits = null)
    {
        var slug = Regex.Replace(name.ToLowerInvariant(), "[^a-z0-9]+", "-").Trim('-');
        if (slug.Length == 0) slug = "dataset";
        if (slug.Length > 48) slug = slug[..48].TrimEnd('-');
        string id;
        do id = $"{slug}-{Guid.NewGuid().ToString("N")[..6]}";
        while (Directory.Exists(Path.Combine(DatasetsDirectory, id)) || id is FashionMnist or FashionMnistSeg);
        var descriptor = DatasetArchive.Extract(zip, Path.Combine(DatasetsDirectory, id), limits);
        var info = new DatasetInfo(id, name, KindName(descriptor.Kind), descriptor.ImageCount, descriptor.Classes.Count,
            descriptor.Classes, false, null, DateTimeOffset.UtcNow);
        AtomicFile.WriteAllText(Path.Combine(DatasetsDirectory, id + ".json"), JsonSerializer.Serialize(info, Json));
        logger.LogInformation("Dataset {Id} added: {Kind}, {Images} images", id, info.Kind, info.Images);
        return info;
    }

    /// <summary>
    /// Deletes an uploaded dataset: its folder is renamed away first (the dataset disappears from the
    /// list at once), then its description and the renamed folder are removed. A crash in between leaves
    /// a hidden <c>.deleted-*</c> folder or a description without a folder, which the start-up sweep
    /// removes. Built-in datasets cannot be deleted (409); whether a job uses it is the caller's check.
    /// </summary>
    public void Delete(string id)
    {
        var info = Get(id);
        if (info.BuiltIn)
            throw new ConflictException($"'{info.Id}' is a built-in dataset (read from Storage:FashionMnistDirectory); only uploaded datasets can be deleted.");
        var trash = Path.Combine(DatasetsDirectory, $".deleted-{info.Id}-{Guid.NewGuid():N}");
        try
        {
            Directory.Move(Path.Combine(DatasetsDirectory, info.Id), trash);
        }
        catch (DirectoryNotFoundException)
        {
            throw new NotFoundException($"No dataset with id '{id}' (it was deleted meanwhile).");
        }
        File.Delete(Path.Combine(DatasetsDirectory, info.Id + ".json"));
        try
        {
            Directory.Delete(trash, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("Could not remove the deleted dataset's folder {Trash}: {Message}", Path.GetFileName(trash), e.Message);
        }
        logger.LogInformation("Dataset {Id} deleted", info.Id);
    }

    public static string KindName(DatasetKind kind) => kind switch
    {
        DatasetKind.Classification => "classification",
        DatasetKind.Segmentation => "segmentation",
        _ => "unlabelled",
    };

    /// <summary>Opens a dataset's training and validation splits (validation may be null).</summary>
    /// <param name="maxTrain">Use at most this many training images (a seeded subset).</param>
    /// <param name="maxValidation">Use at most this many validation images.</param>
    public (IImageDataset Train, IImageDataset? Validation) Open(string id, int? maxTrain, int? maxValidation, int seed)
    {
        var info = Get(id);
        if (info.BuiltIn)
        {
            var (train, test) = FashionSplits() ?? throw new NotFoundException($"The Fashion-MNIST files are gone from '{fashionDirectory}'.");
            if (maxTrain is { } mt) train = train.Subset(DatasetSplit.Take(train.Count, mt, seed));
            if (maxValidation is { } mv) test = test.Subset(DatasetSplit.Take(test.Count, mv, seed + 1));
            if (id == FashionMnist) return (train, test.Count > 0 ? test : null);
            return (new FashionMnistSegmentationDataset(train, new FashionMnistSegmentationOptions { Seed = seed }),
                test.Count > 0 ? new FashionMnistSegmentationDataset(test, new FashionMnistSegmentationOptions { Seed = seed + 1 }) : null);
        }
        var root = Path.Combine(DatasetsDirectory, info.Id);
        var all = DatasetLayout.Detect(root).Open();
        if (all.Count < 10) return (Limit(all, maxTrain, seed), null);
        var (trainIdx, valIdx) = DatasetSplit.TrainValidation(all.Count, 0.1, seed);
        return (Limit(new DatasetSubset(all, trainIdx), maxTrain, seed), Limit(new DatasetSubset(all, valIdx), maxValidation, seed + 1));
    }

    private static IImageDataset Limit(IImageDataset set, int? max, int seed) =>
        max is { } m && m < set.Count ? new DatasetSubset(set, DatasetSplit.Take(set.Count, m, seed)) : set;

    private (FashionMnistDataset Train, FashionMnistDataset Test)? FashionSplits()
    {
        lock (gate)
        {
            if (!fashionProbed)
            {
                fashionProbed = true;
                try
                {
                    fashionTrain = new FashionMnistDataset(fashionDirectory, FashionMnistSplit.Train);
                    fashionTest = new FashionMnistDataset(fashionDirectory, FashionMnistSplit.Test);
                }
                catch (DatasetException e)
                {
                    logger.LogInformation("Fashion-MNIST is not available ({Message})", e.Message);
                    fashionTrain = fashionTest = null;
                }
            }
            return fashionTrain is null || fashionTest is null ? null : (fashionTrain, fashionTest);
        }
    }
}
