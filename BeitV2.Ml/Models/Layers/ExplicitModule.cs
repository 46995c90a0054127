using static TorchSharp.torch;

namespace BeitV2.Ml.Models.Layers;

// TorchSharp registers a module's fields under their C# names when the module becomes a child
// (RegisterComponents). Our modules register every parameter, buffer and submodule explicitly under
// the official state-dict name, so the automatic pass would only add duplicates under C# names
// (e.g. "outProj" beside "out_proj"). These bases switch it off.

/// <summary>A module whose components are registered explicitly under their official names.</summary>
public abstract class ExplicitModule : nn.Module
{
    protected ExplicitModule(string name) : base(name) { }
    protected override void RegisterComponents() { }
}

/// <inheritdoc cref="ExplicitModule"/>
public abstract class ExplicitModule<T, TResult> : nn.Module<T, TResult>
{
    protected ExplicitModule(string name) : base(name) { }
    protected override void RegisterComponents() { }
}

/// <inheritdoc cref="ExplicitModule"/>
public abstract class ExplicitModule<T1, T2, TResult> : nn.Module<T1, T2, TResult>
{
    protected ExplicitModule(string name) : base(name) { }
    protected override void RegisterComponents() { }
}
