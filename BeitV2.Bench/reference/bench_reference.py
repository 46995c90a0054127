#!/usr/bin/env python3
"""The PyTorch side of `BeitV2.Bench perf`: times the same model cases as the C# side and prints
one JSON object per line; `verify` checks that beitv2_models.py reproduces the official fixtures.

  python3 bench_reference.py verify --fixtures ../shared/fixtures/reference
  python3 bench_reference.py run --model base|tiny --threads 2 [--cases train,matmul] [--quick]
  python3 bench_reference.py worker --threads 2        # JSON commands on stdin: load a forward case, run it n times
  python3 bench_reference.py export --case classifier|tokenizer|segmenter --model base|tiny --out F.onnx
  python3 bench_reference.py memory --model base --threads 2
  python3 bench_reference.py info

Set OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) to --threads before starting it: Debian's torch
1.13 multiplies matrices with the system BLAS (libblas.so.3), which reads its thread count at load,
and OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin between parallel regions and, on
2 cores, take the CPU from OpenBLAS's own threads (batch-1 forwards ~2.5x slower). `info` says which
BLAS the process really loaded: Debian's default libblas3 is the netlib reference BLAS, an order of
magnitude slower than OpenBLAS (apt-get install libopenblas0-pthread).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import beitv2_models as m  # noqa: E402


# ----------------------------------------------------------------------------- presets (mirror the C# presets)

def vit(model, num_classes=1000):
    width, heads = (768, 12) if model == "base" else (192, 3)
    return dict(img_size=224, patch_size=16, num_classes=num_classes, embed_dim=width, depth=12, num_heads=heads,
                init_values=0.1, use_abs_pos_emb=False, use_rel_pos_bias=True, use_mean_pooling=True)


def vqkd_default_vit(img, patch, chans, depth, width=768, heads=12):
    return dict(img_size=img, patch_size=patch, in_chans=chans, num_classes=0, embed_dim=width, depth=depth, num_heads=heads,
                init_values=0.0, use_abs_pos_emb=True, use_rel_pos_bias=False, use_mean_pooling=True)


def vqkd(model, with_teacher):
    """Base = VqkdConfig.Base3xClip (ViT-B encoder, 3-block decoder, CLIP ViT-B/16 teacher);
    tiny = the bench's TinyTokenizer (ViT-Ti encoder, 1-block decoder, CLIP ViT-Ti-sized teacher)."""
    if model == "base":
        enc, dec, out = vqkd_default_vit(224, 16, 3, 12), vqkd_default_vit(14, 1, 32, 3), 512
        teacher = dict(width=768, layers=12, heads=12, output_dim=512)
    else:
        enc, dec, out = vqkd_default_vit(224, 16, 3, 12, 192, 3), vqkd_default_vit(14, 1, 32, 1, 192, 3), 192
        teacher = dict(width=192, layers=12, heads=3, output_dim=192)
    t = m.ClipVisual(224, 16, **teacher).eval() if with_teacher else None
    return m.VQKD(enc, dec, 8192, 32, 0.99, out, t)


def mim(model):
    width, heads = (768, 12) if model == "base" else (192, 3)
    return m.MimModel(embed_dim=width, num_heads=heads, drop_path_rate=0.1, init_values=0.1, early_layers=9, head_layers=2)


def segmenter(model):
    if model == "base":
        return m.Segmenter(img_size=512, embed_dim=768, num_heads=12, channels=768), 512
    return m.Segmenter(img_size=256, embed_dim=192, num_heads=3, channels=192), 256


def params(module):
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- timing

def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def emit(**kv):
    print(json.dumps(kv), flush=True)


CASES = ("classifier", "tokenizer", "segmenter")


def build_case(case, model):
    """One forward case as the C# side runs it: (module, input size, forward on a (B,3,S,S) batch).
    classifier: features + head + softmax; tokenizer: get_codebook_indices of [0,1] pixels;
    segmenter: the class map at the input size (logits resized, argmax)."""
    if case == "classifier":
        module = m.VisionTransformer(**vit(model)).eval()
        return module, 224, lambda x: module(x).softmax(-1)
    if case == "tokenizer":
        module = vqkd(model, with_teacher=False).eval()
        return module, 224, lambda x: module.get_codebook_indices(x.clamp(0, 1))
    if case == "segmenter":
        module, size = segmenter(model)
        module.eval()
        return module, size, lambda x: module.predict(x)
    raise ValueError(f"unknown case {case!r} (expected one of {', '.join(CASES)})")


def forward_cases(model, quick, include_heavy=True):
    base = model == "base"

    def runs(batch, heavy=False):
        if quick:
            return (1, 2) if batch == 1 else (1, 1)
        if heavy:   # Base segmenter at 512 px: ~12 s per image, so no warm-up run
            return (0, 2) if batch == 1 else (0, 1)
        return ((1, 5) if batch == 1 else (1, 2)) if base else ((2, 20) if batch == 1 else (2, 6))

    with torch.inference_mode():
        for case in CASES:
            heavy = base and case == "segmenter"
            if heavy and not include_heavy:
                continue
            module, size, fn = build_case(case, model)
            for batch in (1, 8):
                x = torch.randn(batch, 3, size, size)
                warm, n = runs(batch, heavy)
                times = timed(lambda: fn(x), warm, n)
                emit(case=f"forward/{case}", model=model, batch=batch, size=size, runs=n, params=params(module),
                     ms_per_batch=statistics.median(times), ms_per_image=statistics.median(times) / batch, all_ms=times)


def worker():
    """Serves the C# bench's round-robin: one JSON command per stdin line, one JSON reply per stdout line.
    {"op": "load", "case", "model", "batch"} builds the case (and drops the previous one);
    {"op": "run", "n"} runs its forward n times and replies the times in ms (this process's own clock,
    so the pipe is not timed). The process stays up between runs, as a PyTorch server would."""
    fn = x = None
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "load":
                fn = x = None
                module, size, fn = build_case(cmd["case"], cmd["model"])
                x = torch.randn(cmd["batch"], 3, size, size)
                emit(ok=True, params=params(module), size=size)
            elif cmd["op"] == "run":
                with torch.inference_mode():
                    emit(ok=True, ms=timed(lambda: fn(x), 0, cmd["n"]))
            else:
                emit(ok=False, error=f"unknown op {cmd['op']!r}")
        except Exception as e:  # reported to the C# side, which prints it beside the case
            emit(ok=False, error=f"{type(e).__name__}: {e}")


class _Probs(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        return self.net(images).softmax(-1)


class _TokenIds(torch.nn.Module):
    """VQKD.get_codebook_indices without pre_process (its `x.max() <= 1` branch is data-dependent, and the
    served graph takes pixels already mapped as the manifest says): encoder, task layer, quantizer lookup."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        return self.net.encode(images)[2].view(images.shape[0], -1)


class _ClassMap(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        return self.net.predict(images)


def export(case, model, out):
    """The naive ONNX Runtime anchor: the reference model exported as a competent user would, with
    torch.onnx.export (opset 17, default constant folding, dynamic batch) and nothing else. Random
    weights (normal, std 0.02: the reference's zero inits would make biases trivial); speed does not
    depend on them. Prints one JSON line; an export that torch refuses is reported, not raised."""
    torch.manual_seed(0)
    module, size, _ = build_case(case, model)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                torch.nn.init.normal_(p, std=0.02)
    wrapper, output = {"classifier": (_Probs, "probs"), "tokenizer": (_TokenIds, "token_ids"),
                       "segmenter": (_ClassMap, "classes")}[case]
    start = time.perf_counter()

    def attempt(dynamic):
        try:
            torch.onnx.export(wrapper(module).eval(), torch.randn(1, 3, size, size), out, opset_version=17,
                              input_names=["images"], output_names=[output],
                              dynamic_axes={"images": {0: "batch"}, output: {0: "batch"}} if dynamic else None)
            return None
        except Exception as e:  # e.g. UperNet's adaptive pooling: torch 1.13 cannot export it
            message = str(e).splitlines()[0].split(" Please feel free")[0].split("  [Caused by")[0]
            return f"{type(e).__name__}: {message[:300]}"

    error = attempt(dynamic=True)
    if error is not None:
        # A fixed batch would do for one batch size; if that fails too, its error names the real obstacle.
        static = attempt(dynamic=False)
        emit(case="export", ok=False, error=error if static is None else f"{error}; with a fixed batch: {static}")
        return
    emit(case="export", ok=True, path=out, output=output, size=size, bytes=os.path.getsize(out),
         seconds=time.perf_counter() - start, torch=torch.__version__)


def adamw(module, lr, wd, betas):
    decay, no_decay = [], []
    for n, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim == 1 or n.endswith(".bias") or n in ("cls_token", "mask_token", "pos_embed")
         or "relative_position_bias_table" in n or n.endswith("gamma_1") or n.endswith("gamma_2") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=betas, eps=1e-8)


def random_mask(batch, patches=196, masked=75):
    mask = torch.zeros(batch, patches, dtype=torch.bool)
    for b in range(batch):
        mask[b, torch.randperm(patches)[:masked]] = True
    return mask


def train_cases(model, quick):
    base = model == "base"
    batch = 8 if base else 16
    warm, steps = (1, 1) if quick else ((1, 3) if base else (2, 5))

    # MIM (engine_for_pretraining.train_one_epoch): tokenizer labels without grad, two CE losses, clip 3.0, AdamW.
    net, tok = mim(model).train(), vqkd(model, with_teacher=False).eval()
    opt = adamw(net, 1.5e-3, 0.05, (0.9, 0.999))
    images, raw = torch.randn(batch, 3, 224, 224), torch.rand(batch, 3, 224, 224)

    def mim_step():
        mask = random_mask(batch)
        with torch.no_grad():
            labels = tok.get_codebook_indices(raw)[mask]
        outputs = net(images, mask)
        loss = F.cross_entropy(outputs[0], labels) + F.cross_entropy(outputs[1], labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 3.0)
        opt.step()
        return loss.item()

    times = timed(mim_step, warm, steps)
    emit(case="train/mim", model=model, batch=batch, runs=steps, params=params(net), ms_per_batch=statistics.mean(times),
         images_per_second=1000 * batch / statistics.mean(times), all_ms=times)
    del net, tok, opt

    # VQ-KD (engine_for_vqkd.train_one_epoch): teacher targets without grad, cosine + commitment loss, AdamW, no clipping.
    tok = vqkd(model, with_teacher=True).train()
    tok.teacher_model.eval()
    opt = adamw(tok, 5e-5 * 512 / 128, 1e-4, (0.9, 0.99))

    def vqkd_step():
        loss = tok(raw)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    times = timed(vqkd_step, warm, steps)
    trainable = sum(p.numel() for n, p in tok.named_parameters() if not n.startswith("teacher_model."))
    emit(case="train/vqkd", model=model, batch=batch, runs=steps, params=trainable, ms_per_batch=statistics.mean(times),
         images_per_second=1000 * batch / statistics.mean(times), all_ms=times)


def matmul_cases(quick):
    with torch.inference_mode():
        for name, (a, b, c) in {"square2048": (2048, 2048, 2048), "vit_b_mlp": (1576, 768, 3072)}.items():
            x, y = torch.randn(a, b), torch.randn(b, c)
            times = timed(lambda: torch.mm(x, y), 2, 5 if quick else 15)
            best = min(times)
            emit(case=f"matmul/{name}", shape=[a, b, c], ms=statistics.median(times), gflops=2 * a * b * c / best / 1e6,
                 gflops_median=2 * a * b * c / statistics.median(times) / 1e6)


def memory_case(model):
    cls = m.VisionTransformer(**vit(model)).eval()
    with torch.inference_mode():
        cls(torch.randn(8, 3, 224, 224)).softmax(-1)
    emit(case="memory/classifier", model=model, peak_mib=peak_rss_mib(), params=params(cls))


def peak_rss_mib():
    """VmHWM of this process. Not getrusage's ru_maxrss: Linux carries the parent's peak across fork + exec,
    so a child of a large process (the C# bench) would report the parent's memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def loaded_blas():
    """The BLAS library this process really loaded (after a matmul), and what it is. Debian's libblas.so.3
    is an alternative: libblas3 (the netlib reference implementation) or OpenBLAS/BLIS when installed."""
    import ctypes
    torch.mm(torch.randn(64, 64), torch.randn(64, 64))
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if ("blas" in name or "blis" in name or "mkl_rt" in name) and path not in paths:
                paths.append(path)
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "openblas_get_config"):
            lib.openblas_get_config.restype = ctypes.c_char_p
            return dict(blas_path=os.path.realpath(path), blas_kind="openblas", blas_config=lib.openblas_get_config().decode())
        if hasattr(lib, "bli_info_get_version_str"):
            lib.bli_info_get_version_str.restype = ctypes.c_char_p
            return dict(blas_path=os.path.realpath(path), blas_kind="blis", blas_config="BLIS " + lib.bli_info_get_version_str().decode())
        if hasattr(lib, "MKL_Get_Version_String"):
            return dict(blas_path=os.path.realpath(path), blas_kind="mkl", blas_config="MKL")
    for path in paths:
        real = os.path.realpath(path)
        # libblas3's file: /usr/lib/<triplet>/blas/libblas.so.3.x, the reference Fortran BLAS without any of the above.
        if os.path.basename(os.path.dirname(real)) == "blas" and os.path.basename(real).startswith("libblas.so"):
            return dict(blas_path=real, blas_kind="netlib", blas_config="reference BLAS (Debian libblas3)")
    return dict(blas_path=os.path.realpath(paths[0]) if paths else "none loaded", blas_kind="unknown", blas_config="?")


def info():
    blas = "unknown"
    try:
        q = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"], capture_output=True, text=True)
        blas = next((line.split(":", 1)[1].strip() for line in q.stdout.splitlines() if line.startswith("Value:")), blas)
    except OSError:
        pass
    cfg = torch.__config__.show()
    emit(case="info", torch=torch.__version__, threads=torch.get_num_threads(), interop=torch.get_num_interop_threads(),
         openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS"), omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"),
         blas=blas, blas_info=next((p.split("=", 1)[1] for p in cfg.replace(",", "\n").split("\n") if "BLAS_INFO" in p), "?"),
         mkldnn=torch.backends.mkldnn.is_available(), python=sys.version.split()[0], **loaded_blas())


# ----------------------------------------------------------------------------- fixture check

def verify(folder):
    def load(name):
        sd = torch.load(os.path.join(folder, f"{name}.pth"), map_location="cpu")["model"]
        io = torch.load(os.path.join(folder, f"{name}.io.pth"), map_location="cpu")
        spec = json.load(open(os.path.join(folder, f"{name}.json")))
        tol = {t["name"]: t.get("tolerance", {}) for t in spec["io"]}
        return sd, io, spec["config"], tol

    failures = []

    def check(name, key, actual, expected, tol):
        if tol.get("compare") == "exact" or expected.dtype in (torch.int64, torch.bool):
            ok, diff = torch.equal(actual.to(expected.dtype), expected), int((actual != expected).sum())
        else:
            atol, rtol = tol.get("strict_atol", 1e-5), tol.get("strict_rtol", 1e-5)
            diff = (actual - expected).abs().max().item()
            ok = torch.allclose(actual, expected, rtol=rtol, atol=atol)
        emit(case="verify", fixture=name, tensor=key, ok=bool(ok), max_abs_diff=diff)
        if not ok:
            failures.append(f"{name}.{key}")

    torch.set_num_threads(1)
    with torch.inference_mode():
        sd, io, cfg, tol = load("vit_cls")
        net = m.VisionTransformer(**cfg)
        net.load_state_dict(sd)
        net.eval()
        check("vit_cls", "logits", net(io["images"]), io["logits"], tol["logits"])
        check("vit_cls", "features", net.forward_features(io["images"]), io["features"], tol["features"])

        sd, io, cfg, tol = load("mim")
        net = m.MimModel(**{**cfg, "drop_path_rate": 0.0})
        net.load_state_dict(sd)
        net.eval()
        final, agg = net(io["images"], io["bool_masked_pos"])
        check("mim", "logits_final", final, io["logits_final"], tol["logits_final"])
        check("mim", "logits_agg", agg, io["logits_agg"], tol["logits_agg"])

        sd, io, cfg, tol = load("vqkd")
        net = m.VQKD(cfg["encoder"], cfg["decoder"], cfg["n_embed"], cfg["embed_dim"], cfg["decay"], cfg["decoder_out_dim"])
        net.load_state_dict(sd)
        net.eval()
        check("vqkd", "token_ids", net.get_codebook_indices(io["images_raw"]), io["token_ids"], tol["token_ids"])
        check("vqkd", "cluster_size_after_tokenize", net.quantize.cluster_size, io["cluster_size_after_tokenize"],
              tol["cluster_size_after_tokenize"])

        sd, io, cfg, tol = load("clip_teacher")
        net = m.ClipVisual(cfg["input_resolution"], cfg["patch_size"], cfg["width"], cfg["layers"], cfg["heads"], cfg["output_dim"])
        net.load_state_dict({k[len("visual."):]: v for k, v in sd.items()})
        net.eval()
        check("clip_teacher", "regress_target", net.regress_target(io["images_scaled"]), io["regress_target"], tol["regress_target"])
    return failures


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["run", "memory", "info", "verify", "worker", "export"])
    p.add_argument("--model", default="base", choices=["base", "tiny"])
    p.add_argument("--case", default="classifier", choices=CASES, help="export: which model")
    p.add_argument("--out", default=None, help="export: the .onnx file to write")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--cases", default="forward,train,matmul")
    p.add_argument("--quick", action="store_true", help="fewest runs: checks that every case works")
    p.add_argument("--fixtures", default=None)
    p.add_argument("--no-heavy", action="store_true", help="skip the Base segmenter (512 px, ~12 s per image)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    if a.command == "verify":
        failures = verify(a.fixtures)
        if failures:
            print("fixture mismatch: " + ", ".join(failures), file=sys.stderr)
            sys.exit(1)
        return
    if a.command == "export":
        export(a.case, a.model, a.out)
        return
    torch.set_num_threads(a.threads)
    if a.command == "worker":
        worker()
    elif a.command == "info":
        info()
    elif a.command == "memory":
        memory_case(a.model)
    else:
        cases = a.cases.split(",")
        if "matmul" in cases:
            matmul_cases(a.quick)
        if "forward" in cases:
            forward_cases(a.model, a.quick, not a.no_heavy)
        if "train" in cases:
            train_cases(a.model, a.quick)


if __name__ == "__main__":
    main()
