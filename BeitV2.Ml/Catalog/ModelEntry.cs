using System.Text.Json;
using System.Text.Json.Nodes;
using BeitV2.Ml.Checkpoints;
using BeitV2.Ml.Models;
using BeitV2.Ml.Serving;
using static TorchSharp.torch;

namespace BeitV2.Ml.Catalog;

/// <summary>
/// One kind of model in the <see cref="ModelCatalog"/>: everything the library does by kind (build, load
/// weights, describe, deduce from weights, serve), behind one untyped face. Registered as a
/// <see cref="ModelEntry{TConfig, TModule}"/>.
/// </summary>
public abstract class ModelEntry
{
    private protected ModelEntry(string kind) => Kind = kind;

    /// <summary>The kind's name in package manifests (<see cref="ModelManifest.Kind"/>), e.g. <c>vit_cls</c>.</summary>
    public string Kind { get; }
    public abstract Type ConfigType { get; }
    public abstract Type ModuleType { get; }

    /// <summary>Names of the ready-made configs (<c>micro</c>, <c>small</c>, <c>tiny</c>, <c>base</c>, …).</summary>
    public abstract IReadOnlyCollection<string> PresetNames { get; }
    /// <exception cref="KeyNotFoundException">no preset of that name.</exception>
    public abstract object Preset(string name);

    /// <summary>The config as a manifest stores it (snake_case keyword names).</summary>
    /// <exception cref="InvalidDataException">the JSON is not a config of this kind.</exception>
    public abstract object ReadConfig(JsonElement json);
    public abstract JsonElement WriteConfig(object config);

    /// <summary>Whether <paramref name="module"/> is a model of this kind.</summary>
    public abstract bool Holds(nn.Module module);
    /// <summary>The config a model of this kind was built with.</summary>
    public abstract object ConfigOf(nn.Module module);

    /// <summary>A freshly initialised model.</summary>
    public abstract nn.Module Create(object config);
    /// <summary>A model with the weights of one of our packages (strict: every key must fit). The caller owns it.</summary>
    /// <exception cref="CheckpointException">the weights do not fit the config.</exception>
    public abstract nn.Module Load(object config, IReadOnlyDictionary<string, Tensor> stateDict);
    /// <summary>A model with the weights of an official or timm checkpoint (the import route). The caller owns it.</summary>
    /// <exception cref="CheckpointException">the weights do not fit the config.</exception>
    public abstract nn.Module Import(object config, IReadOnlyDictionary<string, Tensor> stateDict);

    public abstract ModelShape Describe(object config);
    /// <summary>What a model of this config can serve (none for a teacher; a ViT classifies only with a head).</summary>
    public abstract IReadOnlySet<Operation> Operations(object config);
    /// <summary>The preprocessing a model of this config expects (written into new packages' manifests); null when the kind is not served.</summary>
    public abstract ModelPreprocessing? DefaultPreprocessing(object config);
    /// <summary>The model wrapped for serving with <paramref name="preprocessing"/>; null when the kind is not served (teachers).</summary>
    public abstract ServedModel? Serve(nn.Module module, ModelPreprocessing preprocessing);
    /// <summary>Whether models of this kind can be written as ONNX graphs.</summary>
    public abstract bool CanExportOnnx { get; }
    /// <summary>The model as an ONNX graph; with <see cref="Onnx.OnnxPrecision.Int8"/> its weight MatMuls quantised (<see cref="Onnx.OnnxInt8Quantizer"/>).</summary>
    /// <exception cref="NotSupportedException">the kind is not exported (<see cref="CanExportOnnx"/>).</exception>
    public abstract global::Onnx.ModelProto ExportOnnx(nn.Module module, Onnx.OnnxExportOptions options);

    // Deduction of the config from a state dict (ArchitectureDeduction); not every kind needs one.
    internal abstract bool CanDeduce { get; }
    internal abstract string? Signature { get; }
    internal abstract bool Recognises(IReadOnlyDictionary<string, Tensor> stateDict);
    internal abstract object Deduce(IReadOnlyDictionary<string, Tensor> stateDict, JsonObject? overrides, DeductionNotes notes);
    internal abstract void Validate(object config);
}

/// <summary>
/// A model kind, registered with one object initializer (as timm's <c>@register_model</c> + <c>build_model_with_cfg</c>):
/// its config type, constructor, weight loader, describer, presets and operations.
/// </summary>
public sealed class ModelEntry<TConfig, TModule>(string kind) : ModelEntry(kind)
    where TConfig : class where TModule : nn.Module
{
    /// <summary>The constructor.</summary>
    public required Func<TConfig, TModule> New { get; init; }
    /// <summary>The config a built model holds.</summary>
    public required Func<TModule, TConfig> ConfigOfModel { get; init; }
    /// <summary>Loads a package's state dict (our own key names) into a new model.</summary>
    public required Action<TModule, IReadOnlyDictionary<string, Tensor>> LoadWeights { get; init; }
    /// <summary>Loads a foreign checkpoint's state dict; <see cref="LoadWeights"/> when not set.</summary>
    public Action<TModule, IReadOnlyDictionary<string, Tensor>>? ImportWeights { get; init; }
    public required Func<TConfig, ModelShape> Describer { get; init; }
    /// <summary>What a model of a config can serve; nothing when not set.</summary>
    public Func<TConfig, IReadOnlySet<Operation>>? Serves { get; init; }
    /// <summary>How a model of this kind is served; null when it is not (teachers).</summary>
    public Serving<TConfig, TModule>? Serving { get; init; }
    /// <summary>Writes a model as an ONNX graph (<see cref="Onnx.OnnxNames"/>); null when the kind is not exported (teachers).</summary>
    public Func<TModule, Onnx.OnnxExportOptions, global::Onnx.ModelProto>? Onnx { get; init; }
    /// <summary>Ready-made configs by size; a caller sets its own class, vocabulary or target counts with <c>with</c>.</summary>
    public IReadOnlyDictionary<string, TConfig> Presets { get; init; } = new Dictionary<string, TConfig>();
    /// <summary>How the config is read back from a state dict; null when the kind cannot be imported.</summary>
    internal Deduction<TConfig>? Deduction { get; init; }

    public override Type ConfigType => typeof(TConfig);
    public override Type ModuleType => typeof(TModule);
    public override IReadOnlyCollection<string> PresetNames => Presets.Keys.ToList();
    public override object Preset(string name) =>
        Presets.TryGetValue(name, out var c) ? c
            : throw new KeyNotFoundException($"A {Kind} model has no '{name}' preset (expected one of {string.Join(", ", Presets.Keys)}).");

    public override object ReadConfig(JsonElement json) => ModelJson.Deserialize<TConfig>(json, Kind);
    public override JsonElement WriteConfig(object config) => JsonSerializer.SerializeToElement(Typed(config), ModelJson.Options);

    public override bool Holds(nn.Module module) => module is TModule;
    public override object ConfigOf(nn.Module module) =>
        ConfigOfModel(module as TModule ?? throw new ArgumentException($"{module.GetType().Name} is not a {Kind} model.", nameof(module)));

    public override nn.Module Create(object config) => New(Typed(config));
    public override nn.Module Load(object config, IReadOnlyDictionary<string, Tensor> stateDict) => BuildWith(LoadWeights, config, stateDict);
    public override nn.Module Import(object config, IReadOnlyDictionary<string, Tensor> stateDict) =>
        BuildWith(ImportWeights ?? LoadWeights, config, stateDict);

    public override ModelShape Describe(object config) => Describer(Typed(config));
    public override IReadOnlySet<Operation> Operations(object config) =>
        Serves?.Invoke(Typed(config)) ?? new HashSet<Operation>();
    public override ModelPreprocessing? DefaultPreprocessing(object config) => Serving?.DefaultPreprocessing(Typed(config));
    public override ServedModel? Serve(nn.Module module, ModelPreprocessing preprocessing) =>
        Serving?.Wrap(module as TModule ?? throw new ArgumentException($"{module.GetType().Name} is not a {Kind} model.", nameof(module)), preprocessing);

    public override bool CanExportOnnx => Onnx is not null;
    public override global::Onnx.ModelProto ExportOnnx(nn.Module module, Onnx.OnnxExportOptions options)
    {
        var graph = (Onnx ?? throw new NotSupportedException($"A {Kind} model cannot be exported to ONNX."))(
            module as TModule ?? throw new ArgumentException($"{module.GetType().Name} is not a {Kind} model.", nameof(module)), options);
        // int8 is one pass over every kind's fp32 graph (the weight MatMuls), so the exporters write fp32 only.
        return options.Precision == global::BeitV2.Ml.Onnx.OnnxPrecision.Int8 ? global::BeitV2.Ml.Onnx.OnnxInt8Quantizer.Quantize(graph) : graph;
    }

    internal override bool CanDeduce => Deduction is not null;
    internal override string? Signature => Deduction?.Signature;
    internal override bool Recognises(IReadOnlyDictionary<string, Tensor> stateDict) => Deduction?.Recognises(stateDict) ?? false;
    internal override object Deduce(IReadOnlyDictionary<string, Tensor> stateDict, JsonObject? overrides, DeductionNotes notes) =>
        (Deduction ?? throw new CheckpointException($"A {Kind} model cannot be read from bare weights.")).Read(stateDict, overrides, notes);
    internal override void Validate(object config) => Deduction?.Validate(Typed(config));

    private TModule BuildWith(Action<TModule, IReadOnlyDictionary<string, Tensor>> load, object config, IReadOnlyDictionary<string, Tensor> sd)
    {
        var module = New(Typed(config));
        try
        {
            load(module, sd);
            return module;
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    private TConfig Typed(object config) =>
        config as TConfig ?? throw new ArgumentException($"A {Kind} model needs a {typeof(TConfig).Name}, not {config.GetType().Name}.", nameof(config));
}

/// <summary>How a kind's config is read back from a state dict (see <see cref="ArchitectureDeduction"/>).</summary>
/// <param name="Recognises">Whether the (normalised) keys are this kind's; the kinds' tests exclude one another.</param>
/// <param name="Signature">The kind and its telltale keys, for the error naming what was expected.</param>
/// <param name="Read">The config the tensor shapes give, with a note per field.</param>
/// <param name="Validate">Checks the config after the override is merged.</param>
internal sealed record Deduction<TConfig>(
    Func<IReadOnlyDictionary<string, Tensor>, bool> Recognises,
    string Signature,
    Func<IReadOnlyDictionary<string, Tensor>, JsonObject?, DeductionNotes, TConfig> Read,
    Action<TConfig> Validate);

/// <summary>How a kind is served: the input its models expect by default and their serving wrapper.</summary>
/// <param name="DefaultPreprocessing">written into new packages' manifests; the fallback for packages without one.</param>
/// <param name="Wrap">the loaded model with the preprocessing its manifest names.</param>
public sealed record Serving<TConfig, TModule>(
    Func<TConfig, ModelPreprocessing> DefaultPreprocessing,
    Func<TModule, ModelPreprocessing, ServedModel> Wrap);
