using BeitV2.Ml.Models;
using BeitV2.Ml.Models.Segmentation;
using BeitV2.Ml.Models.Vqkd;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Training;

/// <summary>
/// One AdamW parameter group as unilm <c>optim_factory.get_parameter_groups</c> builds it:
/// <c>layer_{id}_{decay|no_decay}</c> (or just <c>decay</c>/<c>no_decay</c> without layer ids), its weight
/// decay, its <c>lr_scale</c> and its parameters in model order.
/// </summary>
public sealed record ParameterGroup(string Name, int? LayerId, double LrScale, double WeightDecay,
    IReadOnlyList<string> ParameterNames, IReadOnlyList<Parameter> Parameters);

/// <summary>
/// Parameter groups of the reference optimisers (unilm beit2/optim_factory.py as the tokenizer, pretraining,
/// fine-tuning and segmentation scripts call it).
/// <list type="bullet">
/// <item>Frozen parameters (requires_grad false, e.g. the VQ-KD codebook) are left out.</item>
/// <item>No weight decay for parameters of at most one dimension (LayerNorm, layer scale, q/v biases), for names ending in
/// <c>.bias</c> and for the model's skip list (<c>no_weight_decay()</c>); everything else gets the
/// weight decay (so <c>mask_token</c> and the relative position tables are decayed).</item>
/// <item>With layer-wise lr decay each parameter gets a layer id and its group the scale
/// <c>decay^(L+1−id)</c>; the training loop sets lr = schedule[it] × lr_scale every iteration.</item>
/// </list>
/// Groups are in order of first appearance, as the reference's dict.
/// </summary>
/// <remarks>
/// One reference quirk is not copied: <c>create_optimizer</c> builds no groups at all when the weight
/// decay is 0, which also silently disables layer-wise lr decay; here the groups (and their lr scales)
/// are always built.
/// </remarks>
public static class ParameterGroups
{
    /// <summary><c>no_weight_decay()</c> of the ViT and of the MIM model.</summary>
    public static readonly IReadOnlyList<string> VitSkipList = new[] { "pos_embed", "cls_token" };

    /// <summary><c>VQKD.no_weight_decay()</c>.</summary>
    public static readonly IReadOnlyList<string> VqkdSkipList =
        new[] { "quantize.embedding.weight", "decoder.cls_token", "decoder.pos_embed", "encoder.cls_token", "encoder.pos_embed" };

    /// <summary>
    /// get_parameter_groups. <paramref name="layerId"/> and <paramref name="layerScale"/> give layer-wise
    /// lr decay (both or neither); <paramref name="include"/> filters parameter names (all by default).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> Build(nn.Module model, double weightDecay, IEnumerable<string>? skipList = null,
        Func<string, int>? layerId = null, Func<int, double>? layerScale = null, Func<string, bool>? include = null)
    {
        var skip = new HashSet<string>(skipList ?? Array.Empty<string>(), StringComparer.Ordinal);
        var order = new List<string>();
        var byName = new Dictionary<string, (int? Id, double Scale, double Wd, List<string> Names, List<Parameter> Params)>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad) continue;
            if (include is not null && !include(name)) continue;
            var noDecay = p.dim() <= 1 || name.EndsWith(".bias", StringComparison.Ordinal) || skip.Contains(name);
            var groupName = noDecay ? "no_decay" : "decay";
            int? id = layerId?.Invoke(name);
            if (id is not null) groupName = $"layer_{id}_{groupName}";
            if (!byName.TryGetValue(groupName, out var g))
            {
                var scale = layerScale is not null && id is not null ? layerScale(id.Value) : 1.0;
                g = (id, scale, noDecay ? 0.0 : weightDecay, new List<string>(), new List<Parameter>());
                byName[groupName] = g;
                order.Add(groupName);
            }
            g.Names.Add(name);
            g.Params.Add(p);
        }
        if (order.Count == 0) throw new InvalidOperationException("The model has no trainable parameters.");
        return order.Select(n => new ParameterGroup(n, byName[n].Id, byName[n].Scale, byName[n].Wd, byName[n].Names, byName[n].Params)).ToList();
    }

    /// <summary>
    /// optim_factory.get_num_layer_for_vit with num_max_layer = depth + 2: cls_token, mask_token,
    /// pos_embed and patch_embed.* → 0; blocks.i.* → i + 1; rel_pos_bias.* and everything else → depth + 1.
    /// </summary>
    public static int VitLayerId(string name, int depth)
    {
        if (name is "cls_token" or "mask_token" or "pos_embed" || name.StartsWith("patch_embed", StringComparison.Ordinal)) return 0;
        if (name.StartsWith("rel_pos_bias", StringComparison.Ordinal)) return depth + 1;
        if (name.StartsWith("blocks", StringComparison.Ordinal)) return int.Parse(name.Split('.')[1]) + 1;
        return depth + 1;
    }

    /// <summary>
    /// mmcv_custom layer_decay_optimizer_constructor: backbone.cls_token / mask_token / pos_embed and
    /// backbone.patch_embed.* → 0; backbone.blocks.i.* → i + 1; everything else (rel_pos_bias, necks,
    /// heads) → depth + 1.
    /// </summary>
    public static int SegmentationLayerId(string name, int depth)
    {
        if (name is "backbone.cls_token" or "backbone.mask_token" or "backbone.pos_embed"
            || name.StartsWith("backbone.patch_embed", StringComparison.Ordinal)) return 0;
        if (name.StartsWith("backbone.blocks", StringComparison.Ordinal)) return int.Parse(name.Split('.')[2]) + 1;
        return depth + 1;
    }

    /// <summary>The reference's assigner values: scale[j] = decay^(depth + 1 − j) for j = 0..depth+1.</summary>
    public static double[] LayerDecayScales(double decay, int depth) =>
        Enumerable.Range(0, depth + 2).Select(j => Math.Pow(decay, depth + 1 - j)).ToArray();

    /// <summary>VQ-KD training (run_vqkd_training): no layer decay, VQKD skip list.</summary>
    public static IReadOnlyList<ParameterGroup> ForTokenizer(VqkdTokenizer model, double weightDecay) =>
        Build(model, weightDecay, VqkdSkipList);

    /// <summary>MIM pretraining (run_beitv2_pretraining): no layer decay, skip cls_token and pos_embed (mask_token is decayed).</summary>
    public static IReadOnlyList<ParameterGroup> ForPretraining(BeitMim model, double weightDecay) =>
        Build(model, weightDecay, VitSkipList);

    /// <summary>
    /// Fine-tuning (run_class_finetuning): layer-wise lr decay when <paramref name="layerDecay"/> &lt; 1
    /// (the reference builds no assigner otherwise); optionally no decay on the relative position tables
    /// (<c>--disable_weight_decay_on_rel_pos_bias</c>).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> ForFineTuning(BeitVisionTransformer model, double weightDecay, double layerDecay,
        bool disableWeightDecayOnRelPosBias = false, Func<string, bool>? include = null)
    {
        var depth = model.Depth;
        var skip = new List<string>(VitSkipList);
        if (disableWeightDecayOnRelPosBias)
            for (var i = 0; i < depth; i++) skip.Add($"blocks.{i}.attn.relative_position_bias_table");
        if (layerDecay >= 1.0) return Build(model, weightDecay, skip, include: include);
        var scales = LayerDecayScales(layerDecay, depth);
        return Build(model, weightDecay, skip, n => VitLayerId(n, depth), id => scales[id], include);
    }

    /// <summary>
    /// Segmentation (LayerDecayOptimizerConstructor): every group has a layer id and scale
    /// rate^(depth + 1 − id); the name skip list ('pos_embed', 'cls_token') never matches the prefixed
    /// names, exactly as in the reference, so only 1-D parameters and biases are exempt.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> ForSegmentation(BeitSegmenter model, double weightDecay, double layerDecay)
    {
        var depth = model.Config.Backbone.Depth;
        var scales = LayerDecayScales(layerDecay, depth);
        return Build(model, weightDecay, VitSkipList, n => SegmentationLayerId(n, depth), id => scales[id]);
    }
}

/// <summary>
/// TorchSharp AdamW over <see cref="ParameterGroup"/>s, each group keeping its weight decay and lr
/// scale; <see cref="SetLearningRate"/> applies lr = value × lr_scale to every group.
/// </summary>
public sealed class GroupedOptimizer : IDisposable
{
    public GroupedOptimizer(IReadOnlyList<ParameterGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        if (groups.Count == 0) throw new ArgumentException("No parameter groups.", nameof(groups));
        Groups = groups;
        var adamGroups = groups.Select(g => new AdamW.ParamGroup(g.Parameters.ToList(), lr: 0, beta1: beta1, beta2: beta2, eps: eps,
            weight_decay: g.WeightDecay)).ToList();
        Optimizer = optim.AdamW(adamGroups, lr: 0, beta1: beta1, beta2: beta2, eps: eps);
        paramGroups = Optimizer.ParamGroups.Cast<AdamW.ParamGroup>().ToList();
    }

    private readonly List<AdamW.ParamGroup> paramGroups;

    public AdamW Optimizer { get; }
    public IReadOnlyList<ParameterGroup> Groups { get; }

    /// <summary>The last schedule value applied (before lr scales).</summary>
    public double LearningRate { get; private set; }

    /// <summary>The lr currently set on group <paramref name="index"/>.</summary>
    public double GroupLearningRate(int index) => paramGroups[index].LearningRate;

    /// <summary>The weight decay of group <paramref name="index"/> as the optimiser holds it.</summary>
    public double GroupWeightDecay(int index) => paramGroups[index].Options.weight_decay ?? 0;

    public IEnumerable<Parameter> Parameters => Groups.SelectMany(g => g.Parameters);

    /// <summary>lr of each group = <paramref name="value"/> × its lr_scale (as the reference loop does every iteration).</summary>
    public void SetLearningRate(double value)
    {
        LearningRate = value;
        for (var i = 0; i < paramGroups.Count; i++) paramGroups[i].LearningRate = value * Groups[i].LrScale;
    }

    /// <summary>Drops the gradients (set_to_none, PyTorch 2's default): a parameter without gradient is not stepped.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.grad = null;
    }

    /// <summary>clip_grad_norm_ over the parameters that have a gradient; returns the total norm before clipping.</summary>
    public double ClipGradNorm(double maxNorm, double normType = 2.0)
    {
        using var scope = NewDisposeScope();
        var withGrad = Parameters.Where(p => p.grad is not null).ToList();
        return withGrad.Count == 0 ? 0.0 : nn.utils.clip_grad_norm_(withGrad, maxNorm, normType);
    }

    /// <summary>The global L2 norm of the gradients (for logging when no clipping is configured).</summary>
    public double GradNorm()
    {
        using var scope = NewDisposeScope();
        var norms = Parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!.detach().norm().to(float64)).ToList();
        if (norms.Count == 0) return 0;
        return stack(norms).norm().item<double>();
    }

    public void Step() => Optimizer.step();

    public void Dispose() => Optimizer.Dispose();
}
