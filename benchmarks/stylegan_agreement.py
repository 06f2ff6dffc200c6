"""Do StyleGANs imported by ``ganinv.import_stylegan`` give the images the original code gives?

    python benchmarks/stylegan_agreement.py --stylegan2-ada ~/src/stylegan2-ada-pytorch \
        --stylegan3 ~/src/stylegan3 --rosinality ~/src/stylegan2-pytorch [--out DIR]

Each PATH is your own clone of that original repository (any may be left out; nothing is downloaded, and the
originals' code is imported from the clones at run time, never copied here: their licences differ from ours).
For every implementation and a few small but real configs the script

1. builds the ORIGINAL generator from the clone and randomises every learned parameter and tracked buffer (biases,
   constants, noise inputs and strengths, w_avg, magnitude EMAs, SG3's input transform ...) so that no term hides
   behind a zero or a one; the resampling filters stay as constructed, they are the config;
2. saves it in the original's own file format: an NVlabs snapshot pickle {G, D, G_ema, augment_pipe,
   training_set_kwargs} pickled through NVlabs' ``persistence`` (as training_loop.py writes it), or a rosinality
   checkpoint {g, d, g_ema, g_optim, d_optim, args, latent_avg} written by ``torch.save`` (as its train.py and
   convert_weight.py do). G / g differ from G_ema / g_ema, so an importer that picked the wrong one would fail;
3. imports that FILE with ``ganinv.import_stylegan(file, truncation_psi=ψ)`` — the restricted unpickler, the
   config reader, the weight conversion and the strict load — and compares, for the same z, ψ = 1 and 0.7 and
   constant noise (NVlabs ``noise_mode="const", force_fp32=True``; rosinality ``randomize_noise=False`` with its
   ``latent_avg`` as ``truncation_latent``), the raw [-1, 1] outputs and the [0, 1] images of ``model.generate``
   against the original's (img + 1) / 2 clamped.

Stand-ins, and what they mean for the figures:

* NVlabs' ``torch_utils/ops/*_gradfix.py`` import ``pkg_resources``, gone from recent setuptools: when it is
  missing, a stub module providing only ``parse_version`` (``packaging.version.parse``) is put in
  ``sys.modules`` for the import. On CPU NVlabs' ops take their own reference (plain-torch) paths, so those
  comparisons check ganinv's nets AND ops against NVlabs' reference ops.
* rosinality's ``op`` package compiles CUDA extensions at import. It is replaced in ``sys.modules`` by a stand-in
  made of ganinv's own plain-torch ops (``upfirdn2d``, ``bias_act``) and torch's convolutions (what rosinality's
  ``conv2d_gradfix`` falls back to off CUDA). That comparison therefore checks rosinality's model code and
  ganinv's weight conversion, not rosinality's ops.

Both NVlabs clones ship top-level packages of the same names (``dnnlib``, ``torch_utils``, ``training``), so each
clone is put on ``sys.path`` only while its cases run and its modules are dropped from ``sys.modules`` afterwards.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import pickle
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from packaging.version import parse as parse_version
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import ganinv
from ganinv.experiments.bench import md_table
from ganinv.nets import stylegan2 as ganinv_ops  # its plain-torch ops back rosinality's stand-in

PSIS = (1.0, 0.7)
N_SAMPLES = 4
NVLABS_PACKAGES = ("dnnlib", "torch_utils", "training", "legacy", "metrics")
ROSINALITY_MODULES = ("model", "op", "distributed", "dataset", "non_leaking")
COLUMNS = ["implementation", "config", "ψ", r"max \|Δ\| raw output", r"max \|Δ\| image in [0, 1]", "output range"]
ROSINALITY_NOTE = ("rosinality's model.py runs on ganinv's own ops here (its `op` package compiles CUDA at import): "
                   "its rows check rosinality's model code and ganinv's weight conversion, not rosinality's ops")


# --------------------------------------------------------------------------------------------- import machinery

@contextlib.contextmanager
def clone_on_path(clone: Path, modules: tuple[str, ...], stubs: dict[str, types.ModuleType]) -> Iterator[None]:
    """The clone importable (with ``stubs`` standing in for modules it cannot import here) for the duration only;
    afterwards its top-level ``modules`` and the stubs leave ``sys.modules``, so the next clone's same-named
    packages load from that clone."""
    if not clone.is_dir():
        raise SystemExit(f"{clone} is not a directory (expected a clone of the original repository)")
    sys.path.insert(0, str(clone))
    sys.modules.update(stubs)
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # leave the user's clone as it was
    try:
        yield
    finally:
        sys.dont_write_bytecode = writes_bytecode
        sys.path.remove(str(clone))
        for name in [m for m in sys.modules if m.split(".")[0] in modules or m.split(".")[0] in stubs]:
            del sys.modules[name]


def pkg_resources_stub() -> dict[str, types.ModuleType]:
    """``{"pkg_resources": stub}`` when pkg_resources is not installed (NVlabs' gradfix ops need only its
    ``parse_version``), else nothing: the real one is used."""
    if importlib.util.find_spec("pkg_resources") is not None:
        return {}
    stub = types.ModuleType("pkg_resources")
    stub.parse_version = parse_version
    return {"pkg_resources": stub}


class FusedLeakyReLU(nn.Module):
    """rosinality's ``op.FusedLeakyReLU``: same parameter name (``bias``) and arguments, ganinv's ``bias_act``."""

    def __init__(self, channel: int, bias: bool = True, negative_slope: float = 0.2, scale: float = 2 ** 0.5):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, input: Tensor) -> Tensor:
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)


def fused_leaky_relu(input: Tensor, bias: Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = 2 ** 0.5) -> Tensor:
    """bias along dim 1, leaky ReLU, × scale: rosinality's ``op.fused_leaky_relu`` through ganinv's ``bias_act``."""
    return ganinv_ops.bias_act(input, bias, act="lrelu", gain=scale, alpha=negative_slope)


def upfirdn2d(input: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, ...] = (0, 0)) -> Tensor:
    """rosinality's ``op.upfirdn2d`` (a true convolution, like ganinv's) through ganinv's ``upfirdn2d``."""
    if not isinstance(up, int) or not isinstance(down, int):
        raise NotImplementedError("the stand-in takes the integer up/down factors rosinality's model.py uses")
    # rosinality's 2-tuple (p0, p1) pads both axes by p0 before and p1 after; ganinv reads a 2-tuple as (x, y)
    padding = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)
    return ganinv_ops.upfirdn2d(input, kernel, up=up, down=down, padding=padding)


def rosinality_op_standin() -> dict[str, types.ModuleType]:
    """The ``op`` package rosinality's model.py imports (FusedLeakyReLU, fused_leaky_relu, upfirdn2d,
    conv2d_gradfix), made of ganinv's ops; ``conv2d_gradfix`` is torch's convolutions, which is what rosinality's
    own one calls off CUDA."""
    gradfix = types.ModuleType("op.conv2d_gradfix")
    gradfix.enabled = False
    gradfix.conv2d, gradfix.conv_transpose2d = F.conv2d, F.conv_transpose2d
    gradfix.no_weight_gradients = contextlib.nullcontext  # only train.py uses it (around D's R1 penalty)
    op = types.ModuleType("op")
    op.__path__ = []  # a package, as the original is
    op.FusedLeakyReLU, op.fused_leaky_relu, op.upfirdn2d, op.conv2d_gradfix = (FusedLeakyReLU, fused_leaky_relu,
                                                                              upfirdn2d, gradfix)
    return {"op": op, "op.conv2d_gradfix": gradfix}


# ------------------------------------------------------------------------------------------------- randomising

@torch.no_grad()
def randomise_stylegan2(net: nn.Module, seed: int, *, mapping_prefix: str, mapping_lr: float, skip: str,
                        style_bias: str, noise_or_bias: Callable[[str], bool], torgb: Callable[[str], bool]) -> None:
    """Every parameter and buffer random except the resampling filters, at magnitudes a trained StyleGAN2 has:
    effective mapping weights N(0, 1) (stored ones are divided by the lr multiplier), styles around 1, small
    biases and noise strengths, and small toRGB weights so the summed skip image stays about ±1."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in list(net.named_parameters()) + list(net.named_buffers()):
        r = torch.randn(p.shape, generator=gen)
        if name.endswith(skip):
            continue
        if name.startswith(mapping_prefix) and not name.endswith("w_avg"):
            p.copy_(r / mapping_lr if name.endswith("weight") else 0.2 * r / mapping_lr)
        elif name.endswith(style_bias):
            p.copy_(1 + 0.5 * r)
        elif noise_or_bias(name):
            p.copy_(0.3 * r)
        elif name.endswith("w_avg"):
            p.copy_(0.5 * r)
        elif torgb(name):
            p.copy_(0.2 * r)
        else:  # conv weights, the constant input, the recorded noise
            p.copy_(r)


def randomise_nvlabs_sg2(G: nn.Module, seed: int) -> None:
    randomise_stylegan2(G, seed, mapping_prefix="mapping.fc", mapping_lr=G.mapping.fc0.bias_gain,
                        skip="resample_filter", style_bias="affine.bias",
                        noise_or_bias=lambda n: n.endswith(("noise_strength", ".bias")),
                        torgb=lambda n: n.endswith("torgb.weight"))


def randomise_rosinality(g: nn.Module, seed: int) -> None:
    randomise_stylegan2(g, seed, mapping_prefix="style.", mapping_lr=g.style[1].lr_mul, skip="kernel",
                        style_bias="modulation.bias",
                        noise_or_bias=lambda n: n.endswith(("noise.weight", "bias")),
                        torgb=lambda n: n.startswith("to_rgb") and n.endswith("conv.weight"))


@torch.no_grad()
def randomise_nvlabs_sg3(G: nn.Module, seed: int) -> None:
    """Every learned tensor random, magnitude EMAs in [0.3, 3], a random w_avg and a rotated, shifted input
    transform (what gen_images.py sets); the designed filters, frequencies and phases stay as built."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in G.named_parameters():
        lr = 0.01 if name.startswith("mapping") else 1.0  # stored mapping tensors are divided by its lr multiplier
        if name.endswith("affine.bias"):
            p.add_(0.3 * torch.randn(p.shape, generator=gen))  # styles around their init (1; input: 1, 0, 0, 0)
        elif name.endswith("bias"):
            p.copy_(0.2 * torch.randn(p.shape, generator=gen) / lr)
        else:
            p.copy_(torch.randn(p.shape, generator=gen) / lr)
    for name, b in G.named_buffers():
        if name.endswith("magnitude_ema"):
            b.fill_(float(torch.empty(()).uniform_(0.3, 3.0, generator=gen)))
        elif name.endswith("w_avg"):
            b.copy_(torch.randn(b.shape, generator=gen))
    angle, tx, ty = 0.3, 0.12, -0.07
    s, c = np.sin(angle), np.cos(angle)
    G.synthesis.input.transform.copy_(torch.from_numpy(np.linalg.inv([[c, s, tx], [-s, c, ty], [0, 0, 1]])))


# ----------------------------------------------------------------------------------------------- saving files

def save_nvlabs_snapshot(path: Path, G: nn.Module, G_ema: nn.Module, D: nn.Module, resolution: int) -> None:
    """A network-snapshot pickle as NVlabs' training_loop.py writes it (persistent classes carry their source)."""
    dataset = {"class_name": "training.dataset.ImageFolderDataset", "path": "data.zip", "use_labels": False,
               "max_size": None, "xflip": False, "resolution": resolution}
    snapshot: dict = {"training_set_kwargs": dataset}
    for name, module in (("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", None)):
        snapshot[name] = None if module is None else copy.deepcopy(module).eval().requires_grad_(False).cpu()
    with open(path, "wb") as f:
        pickle.dump(snapshot, f)


def save_rosinality_checkpoint(path: Path, g: nn.Module, d: nn.Module, g_ema: nn.Module, latent_avg: Tensor,
                               args: argparse.Namespace) -> None:
    """A checkpoint as rosinality's train.py writes it, plus the ``latent_avg`` convert_weight.py stores. The
    optimisers have taken no step (a real file also holds Adam moments; they change nothing here)."""
    g_reg, d_reg = args.g_reg_every / (args.g_reg_every + 1), args.d_reg_every / (args.d_reg_every + 1)
    g_optim = torch.optim.Adam(g.parameters(), lr=args.lr * g_reg, betas=(0.0, 0.99 ** g_reg))
    d_optim = torch.optim.Adam(d.parameters(), lr=args.lr * d_reg, betas=(0.0, 0.99 ** d_reg))
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g_ema.state_dict(),
                "g_optim": g_optim.state_dict(), "d_optim": d_optim.state_dict(), "args": args,
                "latent_avg": latent_avg}, path)


def rosinality_args(size: int, latent: int, n_mlp: int, channel_multiplier: int) -> argparse.Namespace:
    """train.py's parsed arguments (its defaults), with latent and n_mlp as it sets them."""
    return argparse.Namespace(path="lmdb", arch="stylegan2", iter=800000, batch=16, n_sample=64, size=size, r1=10,
                              path_regularize=2, path_batch_shrink=2, d_reg_every=16, g_reg_every=4, mixing=0.9,
                              ckpt=None, lr=0.002, channel_multiplier=channel_multiplier, wandb=False, local_rank=0,
                              augment=False, augment_p=0, ada_target=0.6, ada_length=500000, ada_every=256,
                              distributed=False, latent=latent, n_mlp=n_mlp, start_iter=0)


# ------------------------------------------------------------------------------------------------- comparing

def latents(dim: int, seed: int) -> Tensor:
    return torch.randn(N_SAMPLES, dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def compare_file(path: Path, original: Callable[[Tensor, float], Tensor], z: Tensor, implementation: str,
                 config: str) -> list[dict]:
    """One row per ψ: the file imported by ganinv against the original module's output for the same z."""
    rows = []
    for psi in PSIS:
        model = ganinv.import_stylegan(path, truncation_psi=psi)
        ref = original(z, psi)
        raw = model.method.nets["generator"].generator(z, truncation_psi=psi)
        image = model.generate(z)
        rows.append({COLUMNS[0]: implementation, COLUMNS[1]: config, COLUMNS[2]: f"{psi:g}",
                     COLUMNS[3]: f"{(raw - ref).abs().max().item():.1e}",
                     COLUMNS[4]: f"{(image - ((ref + 1) / 2).clamp(0, 1)).abs().max().item():.1e}",
                     COLUMNS[5]: f"[{ref.min().item():.2f}, {ref.max().item():.2f}]"})
    return rows


def nvlabs_original(G_ema: nn.Module) -> Callable[[Tensor, float], Tensor]:
    return lambda z, psi: G_ema(z, None, truncation_psi=psi, noise_mode="const", force_fp32=True)


def rosinality_original(g_ema: nn.Module, latent_avg: Tensor) -> Callable[[Tensor, float], Tensor]:
    """generate.py's call: the file's latent_avg as truncation latent (rosinality skips truncation at ψ = 1)."""
    return lambda z, psi: g_ema([z], truncation=psi, truncation_latent=latent_avg[None], randomize_noise=False)[0]


SG2ADA_CASES = [  # label, z_dim = w_dim, resolution, mapping_kwargs, synthesis_kwargs
    ("32 px, z=w=64, mapping 2, clamp 256, fp16 res 2", 64, 32, {"num_layers": 2},
     {"channel_base": 512, "channel_max": 64, "conv_clamp": 256, "num_fp16_res": 2}),
    ("64 px, z=w=512, mapping 8, clamp 256, fp16 res 4", 512, 64, {"num_layers": 8},
     {"channel_base": 1024, "channel_max": 128, "conv_clamp": 256, "num_fp16_res": 4}),
]


def run_stylegan2_ada(clone: Path, workdir: Path) -> list[dict]:
    rows = []
    with clone_on_path(clone, NVLABS_PACKAGES, pkg_resources_stub()):
        from training.networks import Discriminator, Generator  # NVlabs stylegan2-ada-pytorch

        for seed, (label, dim, res, mapping_kwargs, synthesis_kwargs) in enumerate(SG2ADA_CASES):
            torch.manual_seed(seed)
            # keyword arguments only, as NVlabs' training passes them, so the pickle's init_kwargs hold everything
            G = Generator(z_dim=dim, c_dim=0, w_dim=dim, img_resolution=res, img_channels=3,
                          mapping_kwargs=mapping_kwargs, synthesis_kwargs=synthesis_kwargs).eval()  # eval: w_avg fixed
            G_ema = copy.deepcopy(G)
            randomise_nvlabs_sg2(G, 100 + seed)
            randomise_nvlabs_sg2(G_ema, 200 + seed)
            D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=synthesis_kwargs["channel_base"],
                              channel_max=synthesis_kwargs["channel_max"], conv_clamp=256)
            path = workdir / f"sg2ada-{seed}.pkl"
            save_nvlabs_snapshot(path, G, G_ema, D, res)
            rows += compare_file(path, nvlabs_original(G_ema), latents(dim, 300 + seed), "NVlabs stylegan2-ada-pytorch",
                                 label)
    return rows


SG3_CASES = [  # config, resolution, num_layers, channel_base, channel_max (R doubles the last two, as train.py does)
    ("T", 32, 14, 1024, 32),  # NVlabs' default depth
    ("R", 32, 14, 1024, 32),
]


def sg3_kwargs(cfg: str, res: int, num_layers: int, cbase: int, cmax: int, dim: int = 64) -> dict:
    """Generator kwargs as NVlabs' train.py builds them (flat synthesis kwargs; R: 1×1 convs, radial filters)."""
    kw = {"z_dim": dim, "c_dim": 0, "w_dim": dim, "img_resolution": res, "img_channels": 3,
          "mapping_kwargs": {"num_layers": 2}, "channel_base": cbase, "channel_max": cmax, "num_fp16_res": 4,
          "conv_clamp": 256, "magnitude_ema_beta": 0.5 ** (32 / 20e3), "num_layers": num_layers}
    if cfg == "R":
        kw.update(conv_kernel=1, channel_base=cbase * 2, channel_max=cmax * 2, use_radial_filters=True)
    return kw


def run_stylegan3(clone: Path, workdir: Path) -> list[dict]:
    rows = []
    with clone_on_path(clone, NVLABS_PACKAGES, pkg_resources_stub()):
        from training.networks_stylegan2 import Discriminator  # NVlabs stylegan3 (its D is StyleGAN2's)
        from training.networks_stylegan2 import Generator as StyleGAN2Generator
        from training.networks_stylegan3 import Generator

        # the stylegan3 repository's --cfg=stylegan2: its own StyleGAN2 code, synthesis kwargs passed flat
        torch.manual_seed(10)
        kw = {"z_dim": 64, "c_dim": 0, "w_dim": 64, "img_resolution": 32, "img_channels": 3,
              "mapping_kwargs": {"num_layers": 8}, "channel_base": 512, "channel_max": 64, "num_fp16_res": 4,
              "conv_clamp": 256, "fused_modconv_default": "inference_only"}
        G = StyleGAN2Generator(**kw).eval()
        G_ema = copy.deepcopy(G)
        randomise_nvlabs_sg2(G, 110)
        randomise_nvlabs_sg2(G_ema, 210)
        D = Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=512, channel_max=64,
                          block_kwargs={}, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})
        path = workdir / "sg3repo-sg2.pkl"
        save_nvlabs_snapshot(path, G, G_ema, D, 32)
        rows += compare_file(path, nvlabs_original(G_ema), latents(64, 310), "NVlabs stylegan3 (--cfg=stylegan2)",
                             "32 px, z=w=64, mapping 8, clamp 256, fp16 res 4")

        for seed, case in enumerate(SG3_CASES):
            torch.manual_seed(seed)
            kw = sg3_kwargs(*case)
            G = Generator(**kw).eval()
            G_ema = copy.deepcopy(G)
            randomise_nvlabs_sg3(G, 100 + seed)
            randomise_nvlabs_sg3(G_ema, 200 + seed)
            D = Discriminator(c_dim=0, img_resolution=kw["img_resolution"], img_channels=3,
                              channel_base=kw["channel_base"], channel_max=kw["channel_max"], block_kwargs={},
                              mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": 4})
            path = workdir / f"sg3-{seed}.pkl"
            save_nvlabs_snapshot(path, G, G_ema, D, kw["img_resolution"])
            cfg, res, layers = case[:3]
            label = (f"StyleGAN3-{cfg} {res} px, {layers} layers, z=w=64, channels {kw['channel_base']}/"
                     f"{kw['channel_max']}, rotated input")
            rows += compare_file(path, nvlabs_original(G_ema), latents(kw["z_dim"], 300 + seed), "NVlabs stylegan3",
                                 label)
    return rows


ROSINALITY_CASES = [  # size, style_dim, n_mlp, channel_multiplier
    (32, 64, 2, 2),
    (64, 128, 8, 1),
]


def run_rosinality(clone: Path, workdir: Path) -> list[dict]:
    rows = []
    with clone_on_path(clone, ROSINALITY_MODULES, rosinality_op_standin()):
        from model import Discriminator, Generator  # rosinality stylegan2-pytorch, on the stand-in ops

        for seed, (size, style_dim, n_mlp, cm) in enumerate(ROSINALITY_CASES):
            torch.manual_seed(seed)
            g = Generator(size, style_dim, n_mlp, channel_multiplier=cm)
            g_ema = Generator(size, style_dim, n_mlp, channel_multiplier=cm).eval()
            randomise_rosinality(g, 100 + seed)
            randomise_rosinality(g_ema, 200 + seed)
            d = Discriminator(size, channel_multiplier=cm)
            with torch.no_grad():
                latent_avg = g_ema.mean_latent(4096)[0]  # generate.py's truncation_mean
            path = workdir / f"rosinality-{seed}.pt"
            save_rosinality_checkpoint(path, g, d, g_ema, latent_avg, rosinality_args(size, style_dim, n_mlp, cm))
            label = f"{size} px, style {style_dim}, mapping {n_mlp}, channel multiplier {cm}"
            rows += compare_file(path, rosinality_original(g_ema, latent_avg), latents(style_dim, 300 + seed),
                                 "rosinality stylegan2-pytorch (on ganinv's ops)", label)
    return rows


# ------------------------------------------------------------------------------------------------------- main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stylegan2-ada", type=Path, help="a clone of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--stylegan3", type=Path, help="a clone of NVlabs/stylegan3")
    parser.add_argument("--rosinality", type=Path, help="a clone of rosinality/stylegan2-pytorch")
    parser.add_argument("--out", type=Path, help="also write the table to OUT/agreement.md")
    opts = parser.parse_args()
    if not (opts.stylegan2_ada or opts.stylegan3 or opts.rosinality):
        parser.error("give at least one of --stylegan2-ada, --stylegan3, --rosinality")
    return opts


def main() -> None:
    opts = parse_args()
    t0 = time.time()
    conditions = (f"CPU, fp32, torch {torch.__version__} ({torch.get_num_threads()} threads), {N_SAMPLES} latents "
                  f"per row, constant noise; random weights")
    print(conditions)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="stylegan_agreement_") as tmp:
        for clone, run in ((opts.stylegan2_ada, run_stylegan2_ada), (opts.stylegan3, run_stylegan3),
                           (opts.rosinality, run_rosinality)):
            if clone is not None:
                if run is run_rosinality:
                    print(f"note: {ROSINALITY_NOTE}")
                rows += run(clone.expanduser(), Path(tmp))
    table = md_table(rows, COLUMNS)
    print(table)
    print(f"{time.time() - t0:.0f} s")
    if opts.out is not None:
        opts.out.mkdir(parents=True, exist_ok=True)
        notes = f"{conditions}.\n" + (f"Note: {ROSINALITY_NOTE}.\n" if opts.rosinality else "")
        (opts.out / "agreement.md").write_text(f"{notes}\n{table}")
        print(f"wrote {opts.out / 'agreement.md'}")


if __name__ == "__main__":
    main()
