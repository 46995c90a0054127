using System.Diagnostics;
using BeitV2.Ml.Catalog;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Onnx;
using BeitV2.Ml.Precision;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using static TorchSharp.torch;

namespace BeitV2.Ml.Serving;

/// <summary>How models are loaded for serving (<c>Inference:Engine</c>, <c>Inference:Precision</c>, <c>Inference:Onnx:*</c>, <c>Ml:*</c>).</summary>
public sealed record ServingOptions
{
    public ServingEngine Engine { get; init; } = ServingEngine.Onnx;
    /// <summary>The precision of exported graphs (<c>Inference:Precision</c>); the TorchSharp engine serves float32 (see <see cref="TorchPrecision"/>).</summary>
    public OnnxPrecision Precision { get; init; } = OnnxPrecision.Fp32;
    /// <summary>"cpu" or "cuda:N" (<c>Ml:Device</c>, resolved).</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>The TorchSharp engine's autocast precision (<c>Ml:InferencePrecision</c>); anything but fp32 is served by TorchSharp.</summary>
    public ComputePrecision TorchPrecision { get; init; } = ComputePrecision.Fp32;
    /// <summary>TF32 math on CUDA (<c>Ml:AllowTf32</c>), for ONNX Runtime's CUDA provider as for libtorch.</summary>
    public bool Tf32 { get; init; }
    /// <summary>Intra-op threads of a session when <see cref="OnnxSessionSettings.IntraOpThreads"/> is 0 (<c>Ml:Threads</c>; 0: ONNX Runtime's default).</summary>
    public int Threads { get; init; }
    public OnnxSessionSettings Onnx { get; init; } = new();
    /// <summary>Writes the graphs (the catalogue's exporters; tests count or fail exports through it).</summary>
    public OnnxExporter Exporter { get; init; } = OnnxExporter.Default;
}

/// <summary>A model loaded for serving, and how.</summary>
/// <param name="Kind">the package's kind.</param>
/// <param name="Fallback">why TorchSharp serves a model the ONNX engine was asked for (no exporter for the kind yet, an
/// export or load failure, a TorchSharp-only precision), or null when the model runs on the engine asked for.</param>
/// <param name="Error">the failure behind <paramref name="Fallback"/>, when there was one (for the log).</param>
/// <param name="Graph">the ONNX graph served (cache hit or freshly built), or null.</param>
/// <param name="Precision">what the served model computes in: fp32 or int8 (ONNX), fp32, bf16 or fp16 (TorchSharp).</param>
public sealed record ServedModelLoad(ServedModel Model, string Kind, string? Fallback, Exception? Error, OnnxCachedGraph? Graph,
    TimeSpan LoadTime, string Precision)
{
    public ServingEngine Engine => Model.Engine;
}

/// <summary>
/// Loads a model package for serving on the configured engine. With <see cref="ServingEngine.Onnx"/> the package's graph
/// comes from <see cref="OnnxGraphCache"/> (exported from the TorchSharp model once, then reused without building that
/// model at all) and runs in an <see cref="OnnxServedModel"/>; a kind without an exporter, a TorchSharp-only precision,
/// or a failed export or session falls back to the TorchSharp model, with the reason in <see cref="ServedModelLoad.Fallback"/>.
/// Corrupt weights are an error on either engine.
/// </summary>
public static class ServedModelLoader
{
    /// <exception cref="CheckpointException">not a model folder, an unknown kind, missing or corrupt weights, unusable preprocessing.</exception>
    /// <exception cref="NotSupportedException">the kind is not served for inference (teachers).</exception>
    public static ServedModelLoad Load(string directory, ServingOptions options, ModelCatalog? catalog = null)
    {
        var clock = Stopwatch.StartNew();
        catalog ??= ModelCatalog.Default;
        var manifest = ModelPackage.ReadManifest(directory);
        var entry = catalog[manifest.Kind];
        var config = entry.ReadConfig(manifest.Config);
        var preprocessing = manifest.Preprocessing ?? entry.DefaultPreprocessing(config)
            ?? throw new NotSupportedException($"A {manifest.Kind} model cannot be served for inference.");
        var weightsSha = VerifiedWeightsSha256(directory, manifest);

        string? fallback = null;
        Exception? error = null;
        if (options.Engine == ServingEngine.Onnx)
        {
            fallback = WhyNotOnnx(entry, options);
            if (fallback is null)
            {
                try
                {
                    var key = new OnnxGraphKey(manifest.Kind, manifest.Config.GetRawText(), weightsSha, options.Precision);
                    var operations = entry.Operations(config).Order().ToList();
                    var (model, graph) = LoadOnnx(directory, entry, key, operations, preprocessing, options, catalog);
                    return new ServedModelLoad(model, manifest.Kind, null, null, graph, clock.Elapsed, key.PrecisionName);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    fallback = $"the ONNX path failed ({e.GetType().Name}: {e.Message})";
                    error = e;
                }
            }
        }
        var torch = LoadTorch(directory, options, catalog);
        return new ServedModelLoad(torch, manifest.Kind, fallback, error, null, clock.Elapsed, options.TorchPrecision.Name());
    }

    /// <summary>Why the ONNX engine cannot serve a model of <paramref name="entry"/>'s kind with these options, or null when it can.</summary>
    public static string? WhyNotOnnx(ModelEntry entry, ServingOptions options)
    {
        if (!entry.CanExportOnnx) return $"no ONNX exporter for {entry.Kind} models yet";
        if (options.TorchPrecision != ComputePrecision.Fp32)
            return $"Ml:InferencePrecision={options.TorchPrecision.Name()} is TorchSharp's autocast (the ONNX graphs are {options.Precision.ToString().ToLowerInvariant()})";
        return null;
    }

    private static (OnnxServedModel Model, OnnxCachedGraph? Graph) LoadOnnx(string directory, ModelEntry entry, OnnxGraphKey key,
        IReadOnlyList<Operation> operations, ModelPreprocessing preprocessing, ServingOptions options, ModelCatalog catalog)
    {
        ModelProto Export() => ExportFrom(directory, entry, catalog, options);
        using var sessionOptions = options.Onnx.Create(options.Device, options.Threads, options.Tf32);
        OnnxCachedGraph? graph = null;
        InferenceSession session;
        try
        {
            graph = OnnxGraphCache.GetOrBuild(directory, key, Export);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            // A package folder the server cannot write (a read-only volume): the graph is built again and served from memory,
            // uncached (an export that itself fails this way fails again there, and the caller falls back to TorchSharp).
            graph = null;
        }
        // No forced garbage collection here to lower the first export's peak (it did, by ~290 MiB for ViT-B): with one, a
        // training job stepping in the same process failed inside TorchSharp's AdamW.step ("toFloat ... Expected false to be
        // true", most likely a Scalar finalised while in use) in two of two full test runs under CPU load. The export's
        // garbage is left to the ordinary collections.
        session = graph is null
            ? new InferenceSession(Export().ToByteArray(), sessionOptions)
            : new InferenceSession(graph.ModelPath, sessionOptions);
        try
        {
            return (new OnnxServedModel(session, key.Kind, operations, preprocessing, options.Device, key.Precision), graph);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The package's TorchSharp model on the CPU, checked as serving checks it, written as a graph; the model is disposed.</summary>
    private static ModelProto ExportFrom(string directory, ModelEntry entry, ModelCatalog catalog, ServingOptions options)
    {
        var package = ModelPackage.Load(directory, CPU, catalog);
        ServedModel? check = null;
        try
        {
            package.Module.eval();
            // The TorchSharp wrapper's own checks (e.g. a tokenizer's codebook must be initialised) hold for the graph too.
            check = catalog.Serve(package) ?? throw new NotSupportedException($"A {package.Kind} model cannot be served for inference.");
            return options.Exporter.Export(entry, package.Module, new OnnxExportOptions(options.Precision));
        }
        finally
        {
            if (check is not null) check.Dispose();   // disposes the module
            else package.Dispose();
        }
    }

    private static ServedModel LoadTorch(string directory, ServingOptions options, ModelCatalog catalog)
    {
        var package = ModelPackage.Load(directory, TorchRuntime.ResolveDevice(options.Device), catalog);
        try
        {
            package.Module.eval();
            var served = catalog.Serve(package) ?? throw new NotSupportedException($"A {package.Kind} model cannot be served for inference.");
            if (served is TorchServedModel t) t.Precision = options.TorchPrecision;
            return served;
        }
        catch
        {
            package.Dispose();
            throw;
        }
    }

    /// <summary>The weights file's SHA-256, checked against the manifest's (as <see cref="ModelPackage.Load"/> checks it).</summary>
    private static string VerifiedWeightsSha256(string directory, ModelManifest manifest)
    {
        var weights = Path.Combine(directory, manifest.Weights);
        if (!File.Exists(weights)) throw new CheckpointException($"The weights file '{manifest.Weights}' is missing from '{directory}'.");
        var sha = DurableFiles.Sha256(weights);
        if (manifest.WeightsSha256 is { } expected && !string.Equals(expected, sha, StringComparison.OrdinalIgnoreCase))
            throw new CheckpointException($"'{weights}' does not match the SHA-256 in its manifest: the file is corrupt or was replaced.");
        return sha;
    }
}
