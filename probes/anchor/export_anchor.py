"""The ONNX Runtime anchor of issue 17: the PyTorch reference classifier (random weights) exported by torch.onnx.export, opset 17,
dynamic batch. Usage: python3 export_anchor.py base|tiny OUT.onnx"""
import os, sys
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../BeitV2.Bench/reference"))
import beitv2_models as m  # noqa: E402

size, out = sys.argv[1], sys.argv[2]
width, heads = (768, 12) if size == "base" else (192, 3)
torch.manual_seed(0)
model = m.VisionTransformer(img_size=224, patch_size=16, num_classes=1000, embed_dim=width, depth=12, num_heads=heads,
                            init_values=0.1, use_abs_pos_emb=False, use_rel_pos_bias=True, use_mean_pooling=True).eval()
for p in model.parameters():  # zeros in the reference init would make biases trivial: random, like the C# side
    torch.nn.init.normal_(p, std=0.02)
x = torch.randn(1, 3, 224, 224)
torch.onnx.export(model, x, out, opset_version=17, input_names=["images"], output_names=["logits"],
                  dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
print("torch", torch.__version__, "exported", out, os.path.getsize(out) // 1000000, "MB")
