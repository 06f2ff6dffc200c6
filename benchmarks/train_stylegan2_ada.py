"""Train a StyleGAN2-ADA snapshot with NVlabs' own code on a ganinv dataset's TRAIN split (CPU friendly, resumable).

    python benchmarks/train_stylegan2_ada.py --stylegan2-ada ~/src/stylegan2-ada-pytorch \
        --data celeba:PATH --out sg2ada-run --resolution 32 --kimg 96 \
        [--z-dim 128 --channel-base 1024 --channel-max 128 --batch 32 --seed 0 --threads 1 --snapshot-kimg 8 --ada]
    ganinv import stylegan sg2ada-run/network-snapshot-000096.pkl --out sg

PATH_TO_CLONE is your own clone of NVlabs/stylegan2-ada-pytorch: its code is imported from the clone at run time,
never copied here (its licence differs from ours). From it this script builds ``training.networks.Generator`` /
``Discriminator``, ``training.loss.StyleGAN2Loss`` and (with ``--ada``) ``training.augment.AugmentPipe`` ('bgc',
target 0.6), and runs the loop of NVlabs' ``training/training_loop.py``: lazy regularisation phases Gmain / Greg
(every 4) / Dmain / Dreg (every 16) through ``loss.accumulate_gradients`` with Adam lr and betas scaled by
interval / (interval + 1), NaN-cleaned gradients, the G_ema update with its half-life and ramp-up, and the ADA
heuristic. Defaults follow NVlabs' small-data settings: mapping 2 layers, lr 0.0025, R1 γ 0.01, no path-length
term, style mixing 0.9, minibatch-std group 4, EMA 10 kimg with ramp-up 0.05, and NVlabs' ``--fp32`` (no fp16
layers, no conv clamp: fp16 buys nothing on a CPU). On CPU NVlabs' ops take their own reference (plain-torch)
paths; when ``pkg_resources`` is missing a stub giving its ``parse_version`` stands in (as in
``stylegan_agreement.py``).

Images come from ganinv's own reader, ``ganinv.data.open_dataset(spec, image_size=R, channels=3, split="train")``
(never the test split), scaled to [-1, 1] as NVlabs does, drawn without replacement in a seeded order per epoch.

Files in --out:

* ``network-snapshot-NNNNNN.pkl`` (NNNNNN = kimg done) every ``--snapshot-kimg`` and at the end, in NVlabs' format:
  ``dict(G, D, G_ema, augment_pipe, training_set_kwargs)`` pickled with the modules as NVlabs' persistent objects,
  so the file carries their source code, exactly what training_loop.py writes;
* ``training-state-NNNNNN.pt`` beside the newest snapshot: weights, both Adam states, the image count, the
  augmentation probability and the RNG state, written by ``torch.save`` and read back with ``weights_only=True``,
  so resuming unpickles nothing;
* ``training_options.json``: the options; a resume with different network options is refused.

Every file is written to a temporary name and moved into place with ``os.replace``, the state after its snapshot,
so a kill at any instant leaves the newest state with a complete snapshot beside it. Rerunning the same command
resumes from that state and continues the same run (same data order, same optimiser moments).

Checked (CPU, 2 cores, torch 2.14.1, NVlabs stylegan2-ada-pytorch at its GitHub HEAD): a tiny run on digits,
killed mid-run, resumed, then imported::

    python benchmarks/train_stylegan2_ada.py --stylegan2-ada /tmp/sg2ada --data digits --out /tmp/sgrun \
        --resolution 16 --z-dim 32 --channel-base 256 --channel-max 32 --batch 16 --kimg 3 --snapshot-kimg 1 \
        --tick-kimg 0.5 --threads 1  # killed (kill -9) after its first snapshot, then the same command again
    ganinv import stylegan /tmp/sgrun/network-snapshot-000003.pkl --out /tmp/sgimport
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import re
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ganinv.core.errors import GaninvError  # noqa: E402
from ganinv.data import open_dataset  # noqa: E402
from stylegan_agreement import NVLABS_PACKAGES, clone_on_path, pkg_resources_stub  # noqa: E402

SNAPSHOT_RE = re.compile(r"network-snapshot-(\d{6})\.pkl")
STATE_RE = re.compile(r"training-state-(\d{6})\.pt")
NETWORK_OPTIONS = ("data", "resolution", "z_dim", "map", "channel_base", "channel_max", "mbstd", "batch", "lr",
                   "gamma", "pl_weight", "style_mixing", "ema_kimg", "ema_rampup", "ada", "seed")
BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1,
           hue=1, saturation=1)  # NVlabs train.py's default --augpipe
ADA_TARGET, ADA_INTERVAL, ADA_KIMG = 0.6, 4, 500  # train.py / training_loop.py defaults
G_REG_INTERVAL, D_REG_INTERVAL = 4, 16


# ------------------------------------------------------------------------------------------------------ data

class TrainImages:
    """The train split as NVlabs-style batches: float32 in [-1, 1], each epoch in a seeded permutation, so batch k
    is the same images whether or not the run was interrupted before it."""

    def __init__(self, spec: str, resolution: int, seed: int):
        self.dataset = open_dataset(spec, image_size=resolution, channels=3, split="train")
        self.seed, self._epoch, self._order = seed, -1, None

    def batch(self, batch_idx: int, batch_size: int) -> Tensor:
        images = [self.dataset[self._index(pos)][0] for pos in range(batch_idx * batch_size,
                                                                     (batch_idx + 1) * batch_size)]
        return torch.stack(images).float() * 2 - 1

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, len(self.dataset))
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(len(self.dataset), generator=gen)
        return int(self._order[offset])


# ---------------------------------------------------------------------------------------------- NVlabs' parts

def build_networks(opts: argparse.Namespace) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module | None]:
    """G, D, G_ema and the augment pipe (None without --ada) as NVlabs' train.py configures them, with --fp32."""
    from training.augment import AugmentPipe
    from training.networks import Discriminator, Generator

    common = dict(c_dim=0, img_resolution=opts.resolution, img_channels=3)
    synthesis = dict(channel_base=opts.channel_base, channel_max=opts.channel_max, num_fp16_res=0, conv_clamp=None)
    G = Generator(z_dim=opts.z_dim, w_dim=opts.z_dim, mapping_kwargs=dict(num_layers=opts.map),
                  synthesis_kwargs=synthesis, **common).train().requires_grad_(False)
    D = Discriminator(block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=opts.mbstd),
                      **synthesis, **common).train().requires_grad_(False)
    augment_pipe = None
    if opts.ada:
        augment_pipe = AugmentPipe(**BGC).train().requires_grad_(False)
        augment_pipe.p.zero_()  # AugmentPipe starts at p = 1; training_loop.py sets augment_p = 0 and lets ADA raise it
    return G, D, copy.deepcopy(G).eval(), augment_pipe


def build_phases(G: nn.Module, D: nn.Module, lr: float) -> list[dict]:
    """training_loop.py's lazy-regularisation phases: one Adam per net, lr and betas scaled by the interval."""
    phases = []
    for name, module, interval in (("G", G, G_REG_INTERVAL), ("D", D, D_REG_INTERVAL)):
        ratio = interval / (interval + 1)
        opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(0 ** ratio, 0.99 ** ratio), eps=1e-8)
        phases += [dict(name=name + "main", module=module, opt=opt, interval=1),
                   dict(name=name + "reg", module=module, opt=opt, interval=interval)]
    return phases


def run_phases(loss, phases: list[dict], real_img: Tensor, z_dim: int, batch_idx: int) -> None:
    """One iteration of training_loop.py's phase loop (one round: batch_gpu = batch on one device)."""
    from torch_utils import misc

    real_c = torch.zeros([real_img.shape[0], 0])
    all_gen_z = torch.randn([len(phases) * real_img.shape[0], z_dim]).split(real_img.shape[0])
    for phase, gen_z in zip(phases, all_gen_z):
        if batch_idx % phase["interval"] != 0:
            continue
        phase["opt"].zero_grad(set_to_none=True)
        phase["module"].requires_grad_(True)
        loss.accumulate_gradients(phase=phase["name"], real_img=real_img, real_c=real_c, gen_z=gen_z,
                                  gen_c=real_c, sync=True, gain=phase["interval"])
        phase["module"].requires_grad_(False)
        for param in phase["module"].parameters():
            if param.grad is not None:
                misc.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        phase["opt"].step()


def update_ema(G: nn.Module, G_ema: nn.Module, opts: argparse.Namespace, cur_nimg: int) -> None:
    """training_loop.py's G_ema step: half-life ema_kimg, ramped up over the first images."""
    ema_nimg = opts.ema_kimg * 1000
    if opts.ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * opts.ema_rampup)
    ema_beta = 0.5 ** (opts.batch / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, ema_beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)


def adjust_ada(augment_pipe: nn.Module, ada_stats, batch: int) -> None:
    """training_loop.py's ADA heuristic: move p towards the target sign of D's real logits."""
    ada_stats.update()
    sign = float(torch.sign(torch.as_tensor(ada_stats["Loss/signs/real"] - ADA_TARGET)))
    adjust = sign * (batch * ADA_INTERVAL) / (ADA_KIMG * 1000)
    augment_pipe.p.copy_((augment_pipe.p + adjust).clamp(min=0))


# --------------------------------------------------------------------------------------------- files on disk

def atomic_write(path: Path, write) -> None:
    """``write(file)`` into a temporary name, flushed to disk, then moved over ``path``: never a half file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_snapshot(out: Path, nets: dict, state: dict, opts: argparse.Namespace) -> Path:
    """network-snapshot-NNNNNN.pkl as training_loop.py writes it, then the state to resume from beside it."""
    kimg = state["cur_nimg"] // 1000
    snapshot = {"training_set_kwargs": {"class_name": "ganinv.data.open_dataset", "spec": opts.data,
                                        "split": "train", "resolution": opts.resolution, "use_labels": False,
                                        "xflip": False, "max_size": None}}
    for name in ("G", "D", "G_ema", "augment_pipe"):
        module = nets[name]
        snapshot[name] = None if module is None else copy.deepcopy(module).eval().requires_grad_(False).cpu()
    path = out / f"network-snapshot-{kimg:06d}.pkl"
    atomic_write(path, lambda f: pickle.dump(snapshot, f))
    atomic_write(out / f"training-state-{kimg:06d}.pt", lambda f: torch.save(state, f))
    for old in out.glob("training-state-*.pt"):  # only the newest is needed to resume
        if old.name != f"training-state-{kimg:06d}.pt":
            old.unlink()
    return path


def newest_state(out: Path) -> Path | None:
    """The newest training state whose snapshot is complete beside it (a kill between the two leaves the
    previous pair, which is still whole)."""
    kimgs = sorted((int(m.group(1)) for p in out.glob("training-state-*.pt") if (m := STATE_RE.fullmatch(p.name))
                    and (out / f"network-snapshot-{m.group(1)}.pkl").is_file()), reverse=True)
    return out / f"training-state-{kimgs[0]:06d}.pt" if kimgs else None


def check_options(out: Path, opts: argparse.Namespace) -> None:
    """Write training_options.json on a fresh run; on a resume refuse different network options."""
    wanted = {key: getattr(opts, key) for key in NETWORK_OPTIONS}
    path = out / "training_options.json"
    if path.is_file():
        recorded = json.loads(path.read_text())
        changed = [f"{k}: {recorded.get(k)!r} -> {v!r}" for k, v in wanted.items() if recorded.get(k) != v]
        if changed:
            raise SystemExit(f"{out} holds a run with other options ({'; '.join(changed)}): use another --out")
    else:
        atomic_write(path, lambda f: f.write(json.dumps(wanted, indent=2).encode()))


# ------------------------------------------------------------------------------------------------- the loop

def restore(path: Path, nets: dict, phases: list[dict]) -> dict:
    """Load a training state (weights_only: plain tensors and numbers) into the nets and optimisers."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for name in ("G", "D", "G_ema"):
        nets[name].load_state_dict(state[name])
    if nets["augment_pipe"] is not None:
        nets["augment_pipe"].p.copy_(state["augment_p"])
    phases[0]["opt"].load_state_dict(state["G_opt"])
    phases[2]["opt"].load_state_dict(state["D_opt"])
    torch.set_rng_state(state["rng"])
    return state


def training_state(nets: dict, phases: list[dict], cur_nimg: int, batch_idx: int) -> dict:
    augment_p = nets["augment_pipe"].p.clone() if nets["augment_pipe"] is not None else torch.zeros(())
    return {"G": nets["G"].state_dict(), "D": nets["D"].state_dict(), "G_ema": nets["G_ema"].state_dict(),
            "G_opt": phases[0]["opt"].state_dict(), "D_opt": phases[2]["opt"].state_dict(), "augment_p": augment_p,
            "cur_nimg": cur_nimg, "batch_idx": batch_idx, "rng": torch.get_rng_state()}


def progress_line(cur_nimg: int, opts: argparse.Namespace, stats, tick_nimg: int, tick_sec: float,
                  elapsed: float, augment_p: float) -> str:
    """One self-contained line per tick (reads the same on a terminal and in a log file)."""
    stats.update()
    mean = lambda name: stats.mean(name) if stats.num(name) else float("nan")  # noqa: E731
    sec_per_kimg = tick_sec / max(tick_nimg, 1) * 1000
    return (f"{time.strftime('%Y-%m-%d %H:%M:%S')}  kimg {cur_nimg / 1000:8.3f} / {opts.kimg:g}  "
            f"sec/kimg {sec_per_kimg:7.1f}  G {mean('Loss/G/loss'):7.4f}  D {mean('Loss/D/loss'):7.4f}  "
            f"r1 {mean('Loss/r1_penalty'):9.3e}  D(real) {mean('Loss/scores/real'):+7.3f}  "
            f"D(fake) {mean('Loss/scores/fake'):+7.3f}  augment_p {augment_p:.3f}  elapsed {elapsed / 60:7.1f} min")


def train(opts: argparse.Namespace) -> None:
    from torch_utils import training_stats
    from training.loss import StyleGAN2Loss

    opts.out.mkdir(parents=True, exist_ok=True)
    check_options(opts.out, opts)
    torch.manual_seed(opts.seed)
    images = TrainImages(opts.data, opts.resolution, opts.seed)
    G, D, G_ema, augment_pipe = build_networks(opts)
    nets = {"G": G, "D": D, "G_ema": G_ema, "augment_pipe": augment_pipe}
    phases = build_phases(G, D, opts.lr)
    loss = StyleGAN2Loss(device=torch.device("cpu"), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                         augment_pipe=augment_pipe, style_mixing_prob=opts.style_mixing, r1_gamma=opts.gamma,
                         pl_weight=opts.pl_weight)
    cur_nimg = batch_idx = 0
    if (state_path := newest_state(opts.out)) is not None:
        state = restore(state_path, nets, phases)
        cur_nimg, batch_idx = state["cur_nimg"], state["batch_idx"]
        print(f"resuming from {state_path.name} at kimg {cur_nimg / 1000:.3f}", flush=True)
    print(f"{len(images.dataset)} train images ({opts.data}), {opts.resolution} px; G {n_params(G):,} and "
          f"D {n_params(D):,} parameters; {torch.get_num_threads()} threads", flush=True)
    stats = training_stats.Collector(regex="Loss/.*")
    ada_stats = training_stats.Collector(regex="Loss/signs/real") if augment_pipe is not None else None
    loop(opts, images, nets, phases, loss, stats, ada_stats, cur_nimg, batch_idx)


def loop(opts, images, nets, phases, loss, stats, ada_stats, cur_nimg: int, batch_idx: int) -> None:
    total, start = int(opts.kimg * 1000), time.time()
    tick, every = int(opts.tick_kimg * 1000), int(opts.snapshot_kimg * 1000)
    tick_nimg, tick_time = cur_nimg, time.time()
    next_tick, next_snapshot = (cur_nimg // tick + 1) * tick, (cur_nimg // every + 1) * every  # same after a resume
    while cur_nimg < total:
        run_phases(loss, phases, images.batch(batch_idx, opts.batch), opts.z_dim, batch_idx)
        update_ema(nets["G"], nets["G_ema"], opts, cur_nimg)
        cur_nimg, batch_idx = cur_nimg + opts.batch, batch_idx + 1
        if ada_stats is not None and batch_idx % ADA_INTERVAL == 0:
            adjust_ada(nets["augment_pipe"], ada_stats, opts.batch)
        if cur_nimg >= next_tick or cur_nimg >= total:
            p = float(nets["augment_pipe"].p) if nets["augment_pipe"] is not None else 0.0
            print(progress_line(cur_nimg, opts, stats, cur_nimg - tick_nimg, time.time() - tick_time,
                                time.time() - start, p), flush=True)
            tick_nimg, tick_time, next_tick = cur_nimg, time.time(), (cur_nimg // tick + 1) * tick
        if cur_nimg >= next_snapshot or cur_nimg >= total:
            path = save_snapshot(opts.out, nets, training_state(nets, phases, cur_nimg, batch_idx), opts)
            print(f"saved {path}", flush=True)
            next_snapshot = (cur_nimg // every + 1) * every
    print(f"done: {cur_nimg / 1000:.3f} kimg", flush=True)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--stylegan2-ada", type=Path, required=True, help="your clone of NVlabs/stylegan2-ada-pytorch")
    add("--data", required=True, help="a ganinv dataset spec: celeba:PATH, folder:PATH, digits, mnist (train split)")
    add("--out", type=Path, required=True, help="run folder: snapshots go here; rerun to resume")
    add("--resolution", type=int, default=32, help="image size in pixels, a power of two >= 8 (default 32)")
    add("--kimg", type=float, default=96, help="train until this many thousand real images were shown (default 96)")
    add("--z-dim", type=int, default=128, help="z and w dimension (default 128)")
    add("--map", type=int, default=2, help="mapping layers (default 2)")
    add("--channel-base", type=int, default=1024, help="NVlabs channel_base for G and D (default 1024)")
    add("--channel-max", type=int, default=128, help="NVlabs channel_max for G and D (default 128)")
    add("--mbstd", type=int, default=4, help="minibatch-std group size (default 4)")
    add("--batch", type=int, default=32, help="batch size (default 32)")
    add("--lr", type=float, default=0.0025, help="Adam learning rate of G and D (default 0.0025)")
    add("--gamma", type=float, default=0.01, help="R1 weight (default 0.01)")
    add("--pl-weight", type=float, default=0.0, help="path-length weight (default 0: off)")
    add("--style-mixing", type=float, default=0.9, help="style-mixing probability (default 0.9)")
    add("--ema-kimg", type=float, default=10, help="G_ema half-life in kimg (default 10)")
    add("--ema-rampup", type=float, default=0.05, help="G_ema ramp-up (default 0.05; a negative value: none)")
    add("--ada", action="store_true", help="adaptive augmentation ('bgc', target 0.6); off by default")
    add("--snapshot-kimg", type=float, default=8, help="write a snapshot every this many kimg (default 8)")
    add("--tick-kimg", type=float, default=1, help="print a progress line every this many kimg (default 1)")
    add("--seed", type=int, default=0, help="random seed (default 0)")
    add("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    return check_args(parser, parser.parse_args())


def check_args(parser: argparse.ArgumentParser, opts: argparse.Namespace) -> argparse.Namespace:
    res = opts.resolution
    if res < 8 or res > 1024 or res & (res - 1):
        parser.error(f"--resolution {res}: expected a power of two from 8 to 1024")
    for name in ("kimg", "z_dim", "map", "channel_base", "channel_max", "batch", "lr", "snapshot_kimg",
                 "tick_kimg", "ema_kimg"):
        if not getattr(opts, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if opts.batch % opts.mbstd:
        parser.error(f"--batch {opts.batch} must be a multiple of --mbstd {opts.mbstd}")
    opts.ema_rampup = None if opts.ema_rampup < 0 else opts.ema_rampup
    return opts


def main() -> None:
    opts = parse_args()
    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    clone = opts.stylegan2_ada.expanduser()
    if not (clone / "training" / "networks.py").is_file():
        raise SystemExit(f"{clone} is not a clone of NVlabs/stylegan2-ada-pytorch (no training/networks.py)")
    try:
        with clone_on_path(clone, NVLABS_PACKAGES, pkg_resources_stub()):
            train(opts)
    except GaninvError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
