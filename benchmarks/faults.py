"""Nothing lost at any instant: SIGKILL at random moments, then the same command again, against an uninterrupted run.

    python benchmarks/faults.py --out bench/faults [--trials 50] [--seed 0] [--disk-full]

Five kinds of work, each a `ganinv` command run as a user would: `train gan`, `train aegan` (post-hoc, on the gan
reference), `train dlsgan` (all tiny: 16 px, width 8, a checkpoint every step, so kills land inside checkpoint
writes), `invert --data` and `index` (a folder of 400 PNG digits written here, shards of 50). For each kind one
uninterrupted reference run is timed; each trial starts the command, SIGKILLs it at a uniformly random instant in
[0, reference time], then runs the resuming command (`--resume` for training, the same command otherwise) up to
three times. Per kind it prints

    trials       SIGKILL trials
    finished     trials whose resumed command exited 0
    unresumable  trials where no resumed command exited 0
    corrupt      finished trials whose result cannot be loaded, or misses entries
    max |Δ|      largest absolute difference of the final weights (training) or latents (invert, index) from the
                 reference

`--disk-full` adds trials on a small tmpfs (needs root and `mount`): training stops on a full disk with one line
and exit status 2, the tmpfs is grown, and `--resume` must end at the reference weights.

Trials are appended to OUT/trials.jsonl as they finish, and a rerun skips those done: the script itself resumes.
Writes OUT/faults.md.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TINY = ["--image-size", "16", "--width", "8", "--latent-dim", "8"]
TRAIN = ["--steps", "30", "--checkpoint-every", "1", "--sample-every", "1000", "--eval-every", "1000",
         "--batch-size", "16", "--seed", "1", "--quiet"]
KINDS = ("train gan", "train aegan", "train dlsgan", "invert --data", "index")


def ganinv(*args) -> list[str]:
    return [sys.executable, "-m", "ganinv", *map(str, args)]


def commands(kind: str, out: Path, setup: Path) -> tuple[list[str], list[str]]:
    """(first command, resuming command) of one kind of work writing into ``out``."""
    images = f"folder:{setup / 'images'}"
    if kind == "train gan":
        first = ganinv("train", "gan", "--data", "digits", *TINY, *TRAIN, "--out", out)
    elif kind == "train aegan":
        first = ganinv("train", "aegan", "--generator", setup / "gan", *TRAIN, "--out", out)
    elif kind == "train dlsgan":
        first = ganinv("train", "dlsgan", "--data", "digits", *TINY, *TRAIN, "--out", out)
    elif kind == "invert --data":
        first = ganinv("invert", setup / "aegan", "--data", images, "--out", out, "--shard-size", 50,
                       "--batch-size", 25, "--workers", 0, "--quiet")
    else:
        first = ganinv("index", setup / "aegan", "--data", images, "--split", "all", "--out", out,
                       "--shard-size", 50, "--batch-size", 25, "--methods", "latent,dhash", "--quiet")
    return first, first + (["--resume"] if kind.startswith("train") else [])


def result_arrays(kind: str, out: Path) -> dict[str, np.ndarray]:
    """What a finished command produced, as arrays to compare; raises when it cannot be read."""
    if kind.startswith("train"):
        from safetensors.torch import load_file

        from ganinv import load
        from ganinv.core.rundir import latest_checkpoint

        load(out)  # loadable through the public API
        return {k: v.float().numpy() for k, v in load_file(latest_checkpoint(out).weights).items()}
    if kind == "invert --data":
        from ganinv.apps.collection import read_latents

        latents, items = read_latents(out)
        return {"latents": latents, "items": np.array([str(i) for i in items])}
    from ganinv.apps.search import SearchIndex

    index = SearchIndex.load(out)
    return {"latent": index.vectors("latent"), "items": np.array([str(i) for i in index.items])}


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    if a.keys() != b.keys():
        return math.inf
    worst = 0.0
    for key in a:
        x, y = a[key], b[key]
        if x.shape != y.shape:
            return math.inf
        if x.dtype.kind in "US":
            worst = max(worst, 0.0 if (x == y).all() else math.inf)
        else:
            same_nan = np.isnan(x) == np.isnan(y)
            if not same_nan.all():
                return math.inf
            worst = max(worst, float(np.nan_to_num(np.abs(x - y)).max(initial=0.0)))
    return worst


def run(command: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = run(command)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def kill_at(command: list[str], seconds: float) -> int | None:
    """Start ``command``, SIGKILL it after ``seconds``; its exit code if it ended first."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None


def prepare(setup: Path) -> dict[str, float]:
    """The data and the runs the kinds need, and each kind's uninterrupted reference (timed)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    if not (setup / "images").is_dir():
        tmp = setup / "images.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for i, digit in enumerate(load_digits().images[:400]):
            Image.fromarray((digit * 255 / 16).astype(np.uint8)).resize((16, 16)).save(tmp / f"{i:04d}.png")
        tmp.rename(setup / "images")
    durations_file = setup / "durations.json"
    durations = json.loads(durations_file.read_text()) if durations_file.is_file() else {}
    for kind in KINDS:
        reference = setup / "reference" / kind.replace(" ", "_").replace("-", "")
        if kind not in durations:
            shutil.rmtree(reference, ignore_errors=True)
            durations[kind] = timed(commands(kind, reference, setup)[0])
            durations_file.write_text(json.dumps(durations))
        if kind == "train gan" and not (setup / "gan").exists():
            shutil.copytree(reference, setup / "gan")
        if kind == "train aegan" and not (setup / "aegan").exists():
            shutil.copytree(reference, setup / "aegan")
    return durations


def reference_dir(setup: Path, kind: str) -> Path:
    return setup / "reference" / kind.replace(" ", "_").replace("-", "")


def trial(kind: str, number: int, seconds: float, setup: Path, scratch: Path) -> dict:
    out = scratch / f"{kind.replace(' ', '_').replace('-', '')}-{number}"
    shutil.rmtree(out, ignore_errors=True)
    first, resume = commands(kind, out, setup)
    ended = kill_at(first, seconds)
    record = {"kind": kind, "trial": number, "kill_after_s": round(seconds, 3), "ended_before_kill": ended is not None}
    attempts = [run(resume) for _ in range(1)]
    while attempts[-1].returncode != 0 and len(attempts) < 3:
        attempts.append(run(resume))
    record["finished"] = attempts[-1].returncode == 0
    record["stderr"] = attempts[-1].stderr.strip().splitlines()[-1:] if not record["finished"] else []
    if record["finished"]:
        try:
            record["delta"] = max_difference(result_arrays(kind, out), result_arrays(kind, reference_dir(setup, kind)))
            record["corrupt"] = record["delta"] == math.inf
        except Exception as exc:  # anything unreadable in a finished result is what this benchmark looks for
            record.update(corrupt=True, delta=None, error=f"{type(exc).__name__}: {exc}")
    shutil.rmtree(out, ignore_errors=True)
    return record


def disk_full_trials(setup: Path, scratch: Path, sizes_kib: list[int]) -> list[dict]:
    """Training on a tmpfs too small to finish: one clear line and exit 2, then room, then --resume."""
    records = []
    mount = scratch / "tmpfs"
    for size in sizes_kib:
        mount.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", str(mount)]).returncode:
            return [{"kind": "disk full", "skipped": "cannot mount a tmpfs here (needs root)"}]
        try:
            out = mount / "run"
            first, resume = commands("train gan", out, setup)
            failed = run(first)
            lines = failed.stderr.strip().splitlines()
            record = {"kind": "disk full", "tmpfs_kib": size, "exit": failed.returncode,
                      "message": lines[-1] if lines else "", "traceback": "Traceback" in failed.stderr}
            subprocess.run(["mount", "-o", "remount,size=65536k", str(mount)], check=True)
            resumed = run(resume)
            record["finished"] = resumed.returncode == 0
            if record["finished"]:
                record["delta"] = max_difference(result_arrays("train gan", out),
                                                 result_arrays("train gan", reference_dir(setup, "train gan")))
                record["corrupt"] = record["delta"] == math.inf
        finally:
            subprocess.run(["umount", str(mount)])
        records.append(record)
    return records


def summary_table(records: list[dict]) -> str:
    lines = ["| work | trials | finished | unresumable | corrupt | max \\|Δ\\| |", "|---|---|---|---|---|---|"]
    for kind in KINDS:
        mine = [r for r in records if r["kind"] == kind]
        if not mine:
            continue
        finished = [r for r in mine if r["finished"]]
        deltas = [r["delta"] for r in finished if r.get("delta") is not None]
        lines.append(f"| {kind} | {len(mine)} | {len(finished)} | {len(mine) - len(finished)} | "
                     f"{sum(bool(r.get('corrupt')) for r in finished)} | {max(deltas, default=0.0):.3g} |")
    return "\n".join(lines)


def disk_table(records: list[dict]) -> str:
    lines = ["| tmpfs | exit | traceback | message | resumed | max \\|Δ\\| |", "|---|---|---|---|---|---|"]
    for r in records:
        if "skipped" in r:
            return f"disk-full trials skipped: {r['skipped']}"
        lines.append(f"| {r['tmpfs_kib']} KiB | {r['exit']} | {'yes' if r['traceback'] else 'no'} | "
                     f"{r['message'][:200]} | {'yes' if r['finished'] else 'no'} | {r.get('delta', '—')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/faults"))
    parser.add_argument("--trials", type=int, default=50, help="SIGKILL trials in all, split over the five kinds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--disk-full", action="store_true", help="also fill a small tmpfs during training (root)")
    args = parser.parse_args(argv)
    setup, scratch = args.out / "setup", args.out / "scratch"
    setup.mkdir(parents=True, exist_ok=True)
    durations = prepare(setup)
    log = args.out / "trials.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    done = {(r["kind"], r["trial"]) for r in records}
    chooser = random.Random(args.seed)
    plan = [(KINDS[i % len(KINDS)], i // len(KINDS)) for i in range(args.trials)]
    instants = [chooser.uniform(0.0, durations[kind]) for kind, _ in plan]  # drawn up front: reruns reuse them
    for (kind, number), seconds in zip(plan, instants):
        if (kind, number) in done:
            continue
        record = trial(kind, number, seconds, setup, scratch)
        records.append(record)
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"[{len(records)}/{args.trials}] {kind} #{number}: killed after {seconds:.2f} s → "
              f"{'finished' if record['finished'] else 'UNRESUMABLE'}"
              f"{', CORRUPT' if record.get('corrupt') else ''}, |Δ| {record.get('delta')}", flush=True)
    command = f"python benchmarks/faults.py --out {args.out} --trials {args.trials} --seed {args.seed}"
    report = ["# Faults: SIGKILL at random instants, then the same command again\n", f"`{command}`\n",
              "Reference (uninterrupted) wall times, s: " + ", ".join(f"{k} {v:.1f}" for k, v in durations.items()),
              "", summary_table(records)]
    if args.disk_full:
        disk = disk_full_trials(setup, scratch, [150, 250, 350, 450, 600])
        report += ["", f"Disk full (`{command} --disk-full`): `train gan` on a tmpfs of the given size, grown to "
                   "64 MiB after the failure, then `--resume`:", "", disk_table(disk)]
    text = "\n".join(report) + "\n"
    (args.out / "faults.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
