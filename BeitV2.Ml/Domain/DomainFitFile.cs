using System.Text.Json;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;

namespace BeitV2.Ml.Domain;

/// <summary>
/// <see cref="DomainFit"/> as a file beside a package's manifest (<see cref="FileName"/>, JSON): the class means, the
/// precision matrix (float32 is plenty for a distance) and the sorted held-out distances. Written atomically; the
/// manifest's <c>domain.out_of_domain</c> names it and its SHA-256, so a replaced or damaged file is noticed on load.
/// </summary>
public sealed record DomainFitFile
{
    public const string FileName = "domain-fit.json";
    public const string FormatName = "beitv2-domain-fit";
    public const int CurrentVersion = 1;

    public string Format { get; init; } = FormatName;
    public int FormatVersion { get; init; } = CurrentVersion;
    public required DomainFitInfo Info { get; init; }
    /// <summary>Class means, K of D.</summary>
    public required float[][] Means { get; init; }
    /// <summary>Σ⁻¹, D×D row-major.</summary>
    public required float[] Precision { get; init; }
    /// <summary>Held-out in-domain distances, ascending.</summary>
    public required double[] Calibration { get; init; }

    public static DomainFitFile From(DomainFit fit) => new()
    {
        Info = fit.Info,
        Means = fit.Gaussian.Means.Select(m => m.Select(v => (float)v).ToArray()).ToArray(),
        Precision = fit.Gaussian.Precision.Select(v => (float)v).ToArray(),
        Calibration = fit.Calibration.Distances.ToArray(),
    };

    public DomainFit ToFit() => new(
        new FeatureGaussian(Means.Select(m => m.Select(v => (double)v).ToArray()).ToList(), Precision.Select(v => (double)v).ToArray()),
        new DomainCalibration(Calibration), Info);

    /// <summary>Writes the fit into <paramref name="directory"/> atomically; returns the file's SHA-256.</summary>
    public static string Write(string directory, DomainFit fit)
    {
        var path = Path.Combine(directory, FileName);
        DurableFiles.ReplaceFile(path, JsonSerializer.SerializeToUtf8Bytes(From(fit), ModelJson.Options));
        return DurableFiles.Sha256(path);
    }

    /// <summary>Reads the fit a manifest names.</summary>
    /// <exception cref="CheckpointException">missing, changed since the manifest was written, or not a fit this build reads.</exception>
    public static DomainFit Read(string directory, DomainFitReference reference)
    {
        var name = Path.GetFileName(reference.File);
        var path = Path.Combine(directory, name);
        if (!File.Exists(path)) throw new CheckpointException($"The out-of-domain fit '{name}' named by the manifest is missing.");
        if (reference.Sha256 is { } sha && !string.Equals(sha, DurableFiles.Sha256(path), StringComparison.OrdinalIgnoreCase))
            throw new CheckpointException($"The out-of-domain fit '{name}' does not match the SHA-256 in the manifest: the file is damaged or was replaced.");
        try
        {
            var file = JsonSerializer.Deserialize<DomainFitFile>(File.ReadAllBytes(path), ModelJson.Options);
            if (file is null || file.Format != FormatName || file.FormatVersion > CurrentVersion)
                throw new CheckpointException($"'{name}' is not an out-of-domain fit this build reads.");
            return file.ToFit();
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new CheckpointException($"'{name}' is not a valid out-of-domain fit: {e.Message}", e);
        }
    }
}
