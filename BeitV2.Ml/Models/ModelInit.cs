using BeitV2.Ml.Models.Layers;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BeitV2.Ml.Models;

/// <summary>
/// From-scratch initialisation as the reference does it. Irrelevant when a checkpoint is loaded,
/// but it decides how our own training starts, so it follows the two reference recipes:
/// fine-tune (unilm beit2/modeling_finetune.py: truncation at ±2 absolute, head scaled by init_scale) and
/// pretraining (beit2/modeling_pretrain.py: truncation at ±1 std, Conv2d included).
/// </summary>
internal static class ModelInit
{
    public static void InitFineTune(BeitVisionTransformer model, VitConfig c)
    {
        using var _ = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            if (m is Linear lin)
            {
                TruncatedNormal.Fill_(lin.weight!, 0, 0.02, -2, 2);
                if (lin.bias is not null) nn.init.zeros_(lin.bias);
            }
        }
        TruncatedNormal.Fill_(model.get_parameter("cls_token")!, 0, 0.02, -2, 2);
        if (model.get_parameter("pos_embed") is { } pos) TruncatedNormal.Fill_(pos, 0, 0.02, -2, 2);
        RescaleBlocks(model.Blocks, 1);
        if (model.Head is { } head)
        {
            head.weight!.mul_(c.InitScale);
            head.bias!.mul_(c.InitScale);
        }
    }

    public static void InitPretrain(nn.Module model, double std, IReadOnlyList<Block> blocks, IReadOnlyList<Block> headBlocks, int earlyLayers)
    {
        using var _ = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Linear lin:
                    TruncatedNormal.Fill_(lin.weight!, 0, std, -std, std);
                    if (lin.bias is not null) nn.init.zeros_(lin.bias);
                    break;
                case Conv2d conv:
                    TruncatedNormal.Fill_(conv.weight!, 0, std, -std, std);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
            }
        }
        foreach (var name in new[] { "cls_token", "mask_token", "pos_embed" })
            if (model.get_parameter(name) is { } p) TruncatedNormal.Fill_(p, 0, std, -std, std);
        RescaleBlocks(blocks, 1);
        RescaleBlocks(headBlocks, earlyLayers + 1);
    }

    /// <summary>fix_init_weight: divide attn.proj and mlp.fc2 weights of the k-th block by sqrt(2k).</summary>
    private static void RescaleBlocks(IReadOnlyList<Block> blocks, int firstLayerId)
    {
        for (var i = 0; i < blocks.Count; i++)
        {
            var k = firstLayerId + i;
            foreach (var (name, p) in blocks[i].named_parameters())
                if (name is "attn.proj.weight" or "mlp.fc2.weight")
                    p.div_(Math.Sqrt(2.0 * k));
        }
    }
}
