"""BEiT v2 in plain PyTorch, written op for op after the official code (microsoft/unilm beit2:
modeling_finetune.py, modeling_pretrain.py, modeling_vqkd.py, norm_ema_quantizer.py,
vqkd_teacher/clip/model.py; semantic_segmentation/backbone/beit.py with mmseg 0.11's UPerHead).

This is the "reference PyTorch code path" that BeitV2.Bench `perf` times next to the C# models.
It keeps the reference's state-dict names and its op order (q scaled before q @ k^T, the bias
added to the scores, softmax, @ v), so `verify` can load the official fixtures and reproduce
their outputs: that is what makes the timings a like-for-like comparison.
Written for PyTorch 1.13 (Debian's python3-torch); nothing here needs torchvision, timm or mmseg.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------- building blocks

class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x.div(keep) * mask


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def relative_position_index(window):
    wh, ww = window
    coords = torch.stack(torch.meshgrid([torch.arange(wh), torch.arange(ww)], indexing="ij"))
    flat = torch.flatten(coords, 1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += wh - 1
    rel[:, :, 1] += ww - 1
    rel[:, :, 0] *= 2 * ww - 1
    num_distance = (2 * wh - 1) * (2 * ww - 1) + 3
    index = torch.zeros((wh * ww + 1,) * 2, dtype=rel.dtype)
    index[1:, 1:] = rel.sum(-1)
    index[0, 0:] = num_distance - 3
    index[0:, 0] = num_distance - 2
    index[0, 0] = num_distance - 1
    return index, num_distance


class RelativePositionBias(nn.Module):
    """The shared bias of the MIM model (one table for all blocks)."""

    def __init__(self, window, heads):
        super().__init__()
        self.window = window
        index, n = relative_position_index(window)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(n, heads))
        self.register_buffer("relative_position_index", index)

    def forward(self):
        t = self.window[0] * self.window[1] + 1
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(t, t, -1)
        return bias.permute(2, 0, 1).contiguous()


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True, window=None):
        super().__init__()
        self.num_heads = heads
        head_dim = dim // heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.window = window
        if window is not None:
            index, n = relative_position_index(window)
            self.relative_position_bias_table = nn.Parameter(torch.zeros(n, heads))
            self.register_buffer("relative_position_index", index)
        else:
            self.relative_position_bias_table = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, rel_pos_bias=None):
        b, n, c = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias, requires_grad=False), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)
        if self.relative_position_bias_table is not None:
            t = self.window[0] * self.window[1] + 1
            rpb = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(t, t, -1)
            attn = attn + rpb.permute(2, 0, 1).contiguous().unsqueeze(0)
        if rel_pos_bias is not None:
            attn = attn + rel_pos_bias
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0, drop_path=0.0, init_values=0.0, window=None, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, True, window)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if init_values > 0:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dim))
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x, rel_pos_bias=None):
        if self.gamma_1 is None:
            x = x + self.drop_path(self.attn(self.norm1(x), rel_pos_bias=rel_pos_bias))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x), rel_pos_bias=rel_pos_bias))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, dim):
        super().__init__()
        self.grid = img_size // patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def _drop_rates(rate, depth):
    return [x.item() for x in torch.linspace(0, rate, depth)]


# ----------------------------------------------------------------------------- models

class VisionTransformer(nn.Module):
    """modeling_finetune.VisionTransformer: the classifier, the backbone and the VQ-KD encoder/decoder."""

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12, num_heads=12,
                 mlp_ratio=4.0, drop_path_rate=0.0, init_values=0.1, use_abs_pos_emb=False, use_rel_pos_bias=True,
                 use_mean_pooling=True, norm_eps=1e-6, **_):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        grid = self.patch_embed.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, embed_dim)) if use_abs_pos_emb else None
        window = (grid, grid) if use_rel_pos_bias else None
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, d, init_values, window, norm_eps)
                                     for d in _drop_rates(drop_path_rate, depth)])
        self.norm = nn.Identity() if use_mean_pooling else nn.LayerNorm(embed_dim, eps=norm_eps)
        self.fc_norm = nn.LayerNorm(embed_dim, eps=norm_eps) if use_mean_pooling else None
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def tokens(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_features(self, x, return_patch_tokens=False):
        x = self.tokens(x)
        if self.fc_norm is None:
            return x[:, 1:] if return_patch_tokens else x[:, 0]
        t = x[:, 1:]
        return self.fc_norm(t) if return_patch_tokens else self.fc_norm(t.mean(1))

    def forward(self, x):
        return self.head(self.forward_features(x))


class MimModel(nn.Module):
    """modeling_pretrain.VisionTransformerForMaskedImageModelingCLS (shared rel-pos bias, shared LM head)."""

    def __init__(self, img_size=224, patch_size=16, vocab_size=8192, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                 drop_path_rate=0.1, init_values=0.1, early_layers=9, head_layers=2, norm_eps=1e-6, **_):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        grid = self.patch_embed.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.rel_pos_bias = RelativePositionBias((grid, grid), num_heads)
        dpr = _drop_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, d, init_values, None, norm_eps) for d in dpr])
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.lm_head = nn.Linear(embed_dim, vocab_size)
        self.early_layers = early_layers
        self.cls_pt_layers = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, dpr[early_layers + i], init_values, None, norm_eps)
                                            for i in range(head_layers)])

    def forward(self, x, bool_masked_pos):
        x = self.patch_embed(x)
        b, n, _ = x.shape
        w = bool_masked_pos.unsqueeze(-1).type_as(self.mask_token)
        x = x * (1 - w) + self.mask_token.expand(b, n, -1) * w
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        rel_pos_bias = self.rel_pos_bias()
        for i, blk in enumerate(self.blocks):
            x = blk(x, rel_pos_bias=rel_pos_bias)
            if i + 1 == self.early_layers:
                early_states = x[:, 1:]
        x_cls_pt = torch.cat([x[:, [0]], early_states], dim=1)
        for blk in self.cls_pt_layers:
            x_cls_pt = blk(x_cls_pt, rel_pos_bias=rel_pos_bias)
        x, x_cls_pt = self.norm(x)[:, 1:], self.norm(x_cls_pt)[:, 1:]
        return [self.lm_head(x[bool_masked_pos]), self.lm_head(x_cls_pt[bool_masked_pos])]


def l2norm(t):
    return F.normalize(t, p=2, dim=-1)


class EmbeddingEMA(nn.Module):
    def __init__(self, num_tokens, codebook_dim):
        super().__init__()
        self.weight = nn.Parameter(l2norm(torch.randn(num_tokens, codebook_dim)), requires_grad=False)
        self.cluster_size = nn.Parameter(torch.zeros(num_tokens), requires_grad=False)
        self.embed_avg = nn.Parameter(self.weight.data.clone(), requires_grad=False)
        self.register_buffer("initted", torch.tensor([True]))


class NormEMAVectorQuantizer(nn.Module):
    def __init__(self, n_embed, embedding_dim, decay=0.99, beta=1.0, eps=1e-5):
        super().__init__()
        self.num_tokens, self.codebook_dim, self.decay, self.beta, self.eps = n_embed, embedding_dim, decay, beta, eps
        self.embedding = EmbeddingEMA(n_embed, embedding_dim)
        self.register_buffer("cluster_size", torch.zeros(n_embed))

    def forward(self, z):
        z = l2norm(z.permute(0, 2, 3, 1))          # b c h w -> b h w c
        z_flat = z.reshape(-1, self.codebook_dim)
        e = self.embedding.weight
        d = z_flat.pow(2).sum(dim=1, keepdim=True) + e.pow(2).sum(dim=1) - 2 * torch.einsum("bd,nd->bn", z_flat, e)
        idx = torch.argmin(d, dim=1)
        z_q = F.embedding(idx, e).view(z.shape)
        encodings = F.one_hot(idx, self.num_tokens).type(z.dtype)
        if not self.training:
            with torch.no_grad():
                self.cluster_size.data.mul_(self.decay).add_(encodings.sum(0), alpha=1 - self.decay)
        if self.training:
            bins = encodings.sum(0)
            self.cluster_size.data.mul_(self.decay).add_(bins, alpha=1 - self.decay)
            zero_mask = bins == 0
            bins = bins.masked_fill(zero_mask, 1.0)
            embed_sum = z_flat.t() @ encodings
            embed_normalized = l2norm((embed_sum / bins.unsqueeze(0)).t())
            embed_normalized = torch.where(zero_mask[..., None], e, embed_normalized)
            self.embedding.weight.data.mul_(self.decay).add_(embed_normalized, alpha=1 - self.decay)
            self.embedding.weight.data.copy_(l2norm(self.embedding.weight.data))
        loss = self.beta * F.mse_loss(z_q.detach(), z)
        z_q = z + (z_q - z).detach()
        return z_q.permute(0, 3, 1, 2), loss, idx


class ClipResidualBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, width * 4))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(width * 4, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ClipVisual(nn.Module):
    """vqkd_teacher/clip/model.py VisionTransformer (the frozen VQ-KD teacher)."""

    def __init__(self, input_resolution=224, patch_size=16, width=768, layers=12, heads=12, output_dim=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.Sequential(*[ClipResidualBlock(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def regress_target(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x).permute(1, 0, 2)
        x = self.transformer.resblocks(x).permute(1, 0, 2)
        return self.ln_post(x)[:, 1:] @ self.proj


class ScalingLayerForClip(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.Tensor([0.48145466, 0.4578275, 0.40821073])[None, :, None, None])
        self.register_buffer("scale", torch.Tensor([0.26862954, 0.26130258, 0.27577711])[None, :, None, None])

    def forward(self, x):
        x = ((x + 1.) * 127.5).clamp(0, 255.) / 255.
        return (x - self.shift) / self.scale


class VQKD(nn.Module):
    """modeling_vqkd.VQKD with the CLIP teacher (targets = CLIP patch tokens @ proj, cosine loss)."""

    def __init__(self, encoder, decoder, n_embed=8192, embed_dim=32, decay=0.99, decoder_out_dim=512, teacher=None):
        super().__init__()
        self.encoder = VisionTransformer(**encoder)
        self.decoder = VisionTransformer(**decoder)
        self.quantize = NormEMAVectorQuantizer(n_embed, embed_dim, decay)
        self.patch_size = encoder["patch_size"]
        enc, dec = encoder["embed_dim"], decoder["embed_dim"]
        self.encode_task_layer = nn.Sequential(nn.Linear(enc, enc), nn.Tanh(), nn.Linear(enc, embed_dim))
        self.decode_task_layer = nn.Sequential(nn.Linear(dec, dec), nn.Tanh(), nn.Linear(dec, decoder_out_dim))
        self.teacher_model = teacher
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad = False
        self.scaling_layer = ScalingLayerForClip()

    @staticmethod
    def pre_process(x):
        return x * 255 / 127.5 - 1 if x.max() <= 1 else x / 127.5 - 1

    def encode(self, x):
        feats = self.encoder.forward_features(x, return_patch_tokens=True)
        with torch.cuda.amp.autocast(enabled=False):
            q = self.encode_task_layer(feats.type_as(self.encode_task_layer[-1].weight))
        n = q.shape[1]
        h = w = int(math.sqrt(n))
        q = q.transpose(1, 2).reshape(q.shape[0], -1, h, w)   # b (h w) c -> b c h w
        return self.quantize(q)

    def get_codebook_indices(self, x):
        _, _, idx = self.encode(self.pre_process(x))
        return idx.view(x.shape[0], -1)

    def forward(self, x):
        x = self.pre_process(x)
        with torch.no_grad():
            target = self.teacher_model.regress_target(self.scaling_layer(x))
        quantize, emb_loss, _ = self.encode(x)
        rec = self.decode_task_layer(self.decoder.forward_features(quantize, return_patch_tokens=True))
        rec_loss = (1 - (l2norm(rec) * l2norm(target)).sum(-1)).mean()
        return emb_loss + rec_loss


class ConvModule(nn.Module):
    def __init__(self, cin, cout, k, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class UperHead(nn.Module):
    def __init__(self, in_channels, channels, num_classes, pool_scales=(1, 2, 3, 6)):
        super().__init__()
        top = in_channels[-1]
        self.psp_modules = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(top, channels, 1)) for s in pool_scales])
        self.bottleneck = ConvModule(top + len(pool_scales) * channels, channels, 3, 1)
        self.lateral_convs = nn.ModuleList([ConvModule(c, channels, 1) for c in in_channels[:-1]])
        self.fpn_convs = nn.ModuleList([ConvModule(channels, channels, 3, 1) for _ in in_channels[:-1]])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3, 1)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)

    def forward(self, inputs):
        x = inputs[-1]
        psp = [x] + [resize(m(x), x.shape[2:]) for m in self.psp_modules]
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)] + [self.bottleneck(torch.cat(psp, 1))]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[2:])
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals) - 1)] + [laterals[-1]]
        outs = [outs[0]] + [resize(o, outs[0].shape[2:]) for o in outs[1:]]
        return self.conv_seg(self.fpn_bottleneck(torch.cat(outs, 1)))


class Segmenter(nn.Module):
    """semantic_segmentation backbone/beit.py (per-layer rel-pos bias, FPN necks) + UPerHead, decode path only."""

    def __init__(self, img_size=512, embed_dim=768, depth=12, num_heads=12, out_indices=(3, 5, 7, 11), channels=768,
                 num_classes=150, init_values=0.1, **_):
        super().__init__()
        self.backbone = nn.Module()
        bb = self.backbone
        bb.patch_embed = PatchEmbed(img_size, 16, 3, embed_dim)
        grid = bb.patch_embed.grid
        bb.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        bb.blocks = nn.ModuleList([Block(embed_dim, num_heads, 4.0, 0.0, init_values, (grid, grid)) for _ in range(depth)])
        bb.fpn1 = nn.Sequential(nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2), nn.BatchNorm2d(embed_dim), nn.GELU(),
                                nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2))
        bb.fpn2 = nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2)
        bb.fpn3 = nn.Identity()
        bb.fpn4 = nn.MaxPool2d(2, 2)
        self.out_indices = out_indices
        self.decode_head = UperHead([embed_dim] * 4, channels, num_classes)

    def forward(self, images):
        bb = self.backbone
        x = bb.patch_embed(images)
        b, n, c = x.shape
        g = bb.patch_embed.grid
        x = torch.cat((bb.cls_token.expand(b, -1, -1), x), dim=1)
        features = []
        for i, blk in enumerate(bb.blocks):
            x = blk(x)
            if i in self.out_indices:
                features.append(x[:, 1:].permute(0, 2, 1).reshape(b, -1, g, g))
        features = [op(f) for op, f in zip((bb.fpn1, bb.fpn2, bb.fpn3, bb.fpn4), features)]
        return self.decode_head(features)

    def predict(self, images):
        return resize(self(images), images.shape[2:]).argmax(1)
