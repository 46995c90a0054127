using System.Text.Json;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Domain;
using BeitV2.Ml.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BeitV2.Ml.Checkpoints;

/// <summary>A model rebuilt from a package, with its manifest.</summary>
public sealed class LoadedModel : IDisposable
{
    public LoadedModel(ModelManifest manifest, nn.Module module)
    {
        Manifest = manifest;
        Module = module;
    }

    public ModelManifest Manifest { get; }
    public string Kind => Manifest.Kind;
    public nn.Module Module { get; }

    /// <summary>The module as a concrete model type, with a clear error when the kind differs.</summary>
    public T As<T>() where T : nn.Module =>
        Module as T ?? throw new InvalidOperationException($"The package holds a '{Kind}' model, not a {typeof(T).Name}.");

    public void Dispose() => Module.Dispose();
}

/// <summary>
/// Our own model format: a folder with <c>weights.safetensors</c> (official key names, so the
/// weights also load in Python) and <c>manifest.json</c> (kind + full config + labels), so a saved
/// model reloads without the caller knowing its shape. Saving is atomic: the folder is written
/// under a temporary name and renamed into place, so a crash never leaves a half-written model.
/// </summary>
public static class ModelPackage
{
    public const string ManifestFile = "manifest.json";

    /// <param name="catalog">the kinds it may hold; <see cref="ModelCatalog.Default"/> when null.</param>
    /// <exception cref="ArgumentException">the model is not of a kind in the catalogue.</exception>
    public static void Save(nn.Module model, string directory, IReadOnlyList<string>? labels = null,
        IReadOnlyDictionary<string, string>? metadata = null, ModelCatalog? catalog = null, ModelDomain? domain = null)
    {
        var (entry, config) = (catalog ?? ModelCatalog.Default).Describe(model);
        DurableFiles.WriteDirectory(directory, staging =>
        {
            var weightsPath = Path.Combine(staging, "weights.safetensors");
            DurableFiles.SaveWeights(model, weightsPath);
            WriteManifest(entry, config, staging, weightsPath, labels, metadata, domain);
        });
    }

    /// <summary>
    /// Sets the domain of a saved package, and its out-of-domain fit when given (written beside the manifest, named in
    /// <see cref="ModelDomain.OutOfDomain"/> with its SHA-256). The weights are not touched; each file is replaced
    /// atomically, the fit before the manifest that names it. Without a fit, a fit the package had is kept.
    /// </summary>
    /// <returns>the manifest as written.</returns>
    public static ModelManifest WriteDomain(string directory, ModelDomain domain, DomainFit? fit = null)
    {
        var manifest = ReadManifest(directory);
        if (fit is not null)
        {
            var sha = DomainFitFile.Write(directory, fit);
            domain = domain with
            {
                OutOfDomain = new DomainFitReference(DomainFitFile.FileName, sha, fit.Info.Feature, fit.Info.FitImages, fit.Info.CalibrationImages,
                    DomainCalibration.WarningPercentile),
            };
        }
        else domain = domain with { OutOfDomain = domain.OutOfDomain ?? manifest.Domain?.OutOfDomain };
        manifest = manifest with { Domain = domain };
        DurableFiles.ReplaceFile(Path.Combine(directory, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, ModelJson.Options));
        return manifest;
    }

    /// <summary>The package's out-of-domain fit, or null when its manifest names none.</summary>
    /// <exception cref="CheckpointException">the fit is missing, damaged or unreadable.</exception>
    public static DomainFit? ReadDomainFit(string directory, ModelManifest manifest) =>
        manifest.Domain?.OutOfDomain is { } reference ? DomainFitFile.Read(directory, reference) : null;

    /// <summary>
    /// Writes the manifest of a model of <paramref name="entry"/>'s kind next to its saved weights: kind, config,
    /// the weights' SHA-256 and the kind's preprocessing. Packages and training checkpoints describe a model alike,
    /// so a checkpoint folder also loads (and serves) as a package.
    /// </summary>
    internal static void WriteManifest(ModelEntry entry, object config, string directory, string weightsPath,
        IReadOnlyList<string>? labels = null, IReadOnlyDictionary<string, string>? metadata = null, ModelDomain? domain = null)
    {
        var manifest = new ModelManifest
        {
            Kind = entry.Kind,
            Config = entry.WriteConfig(config),
            Labels = labels,
            Weights = Path.GetFileName(weightsPath),
            WeightsSha256 = DurableFiles.Sha256(weightsPath),
            Metadata = metadata,
            Preprocessing = entry.DefaultPreprocessing(config),
            Domain = domain,
        };
        DurableFiles.WriteAllBytes(Path.Combine(directory, ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, ModelJson.Options));
    }

    public static ModelManifest ReadManifest(string directory)
    {
        var path = Path.Combine(directory, ManifestFile);
        if (!File.Exists(path)) throw new CheckpointException($"No {ManifestFile} in '{directory}': not a BeitV2 model folder.");
        ModelManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<ModelManifest>(File.ReadAllText(path), ModelJson.Options);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path} is not a valid manifest: {e.Message}", e);
        }
        if (manifest is null || manifest.Format != ModelManifest.FormatName)
            throw new CheckpointException($"{path} is not a {ModelManifest.FormatName} manifest.");
        if (manifest.FormatVersion > ModelManifest.CurrentVersion)
            throw new CheckpointException($"{path} has format version {manifest.FormatVersion}; this build reads up to {ModelManifest.CurrentVersion}.");
        return manifest;
    }

    /// <summary>Rebuilds the model from its manifest, loads and verifies its weights, and moves it to <paramref name="device"/>.</summary>
    /// <param name="catalog">the kinds it may hold; <see cref="ModelCatalog.Default"/> when null.</param>
    /// <exception cref="CheckpointException">not a model folder, an unknown kind, a missing or corrupt weights file, or weights that do not fit.</exception>
    public static LoadedModel Load(string directory, Device? device = null, ModelCatalog? catalog = null)
    {
        var manifest = ReadManifest(directory);
        var weights = Path.Combine(directory, manifest.Weights);
        if (!File.Exists(weights)) throw new CheckpointException($"The weights file '{manifest.Weights}' is missing from '{directory}'.");
        if (manifest.WeightsSha256 is { } expected && !string.Equals(expected, DurableFiles.Sha256(weights), StringComparison.OrdinalIgnoreCase))
            throw new CheckpointException($"'{weights}' does not match the SHA-256 in its manifest: the file is corrupt or was replaced.");
        var entry = (catalog ?? ModelCatalog.Default)[manifest.Kind];
        var sd = Safetensors.LoadStateDict(weights);
        try
        {
            var module = entry.Load(entry.ReadConfig(manifest.Config), sd);
            if (device is not null) module.to(device);
            return new LoadedModel(manifest, module);
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }
}
