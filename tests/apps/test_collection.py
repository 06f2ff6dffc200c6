"""`ganinv invert RUN --data SPEC --out DIR`: whole collections streamed to latent shards — resumable after a kill
with the same latents, memory flat in the collection's size, bad files recorded instead of fatal, and the same
under `accelerate launch` with ranks writing disjoint shards."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ganinv import load
from ganinv.apps.collection import index_latents, read_latents, search_latents
from ganinv.apps.invert import invert_dataset
from ganinv.core.errors import GaninvError
from helpers import free_port, make_generator_run, tiny_train

SIZE, CHANNELS = 32, 3  # a 5,000-image batch held in memory would be 61 MB: visible in the peak RSS
SHARD, BATCH = 250, 50
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("collection")
    generator = make_generator_run(root / "generator", channels=CHANNELS, image_size=SIZE)
    run = root / "aegan"
    tiny_train("aegan", run, steps=2, generator=generator)
    return run


def write_generated_folder(run, folder, n):
    """n images from the run's generator as PNG files (the collection to invert)."""
    model = load(run)
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(1)
    for start in range(0, n, 500):
        images = model.generate(model.sample(min(500, n - start), generator=generator))
        pixels = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for k, array in enumerate(pixels):
            Image.fromarray(array).save(folder / f"{start + k:05d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(encoder_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    return {n: write_generated_folder(encoder_run, root / f"gen{n}", n) for n in (1000, 5000)}


def invert_command(run, folder, out, *extra):
    return [sys.executable, "-m", "ganinv", "invert", str(run), "--data", f"folder:{folder}", "--out", str(out),
            "--shard-size", str(SHARD), "--batch-size", str(BATCH), "--workers", "1", "--device", "cpu", "--json",
            *extra]


def run_invert(run, folder, out) -> dict:
    result = subprocess.run(invert_command(run, folder, out), env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def kill_after_first_shard(run, folder, out) -> int:
    """Start the inversion, SIGKILL it as soon as one shard is on disk; returns how many shards were done."""
    process = subprocess.Popen(invert_command(run, folder, out), env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "shards").glob("*.npy")) if (out / "shards").exists() else True:
            assert process.poll() is None, "the inversion ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    return len(list((out / "shards").glob("*.npy")))


def test_killed_half_way_then_resumed_gives_the_uninterrupted_latents_and_flat_memory(encoder_run, folders,
                                                                                       tmp_path):
    small = run_invert(encoder_run, folders[1000], tmp_path / "small")
    whole = run_invert(encoder_run, folders[5000], tmp_path / "whole")
    assert whole["inverted_now"] == 5000 and whole["failed"] == 0

    done = kill_after_first_shard(encoder_run, folders[5000], tmp_path / "killed")
    shards = 5000 // SHARD
    assert 1 <= done < shards, f"killed with {done} of {shards} shards written: not half-way"
    assert not json.loads((tmp_path / "killed" / "manifest.json").read_text())["complete"]
    resumed = run_invert(encoder_run, folders[5000], tmp_path / "killed")
    assert resumed["done_before"] == done * SHARD and resumed["inverted_now"] == 5000 - done * SHARD

    expected, expected_items = read_latents(tmp_path / "whole")
    latents, items = read_latents(tmp_path / "killed")
    assert items == expected_items == sorted(str(p) for p in folders[5000].iterdir())
    assert np.array_equal(latents, expected) and np.isfinite(latents).all()
    direct = load(encoder_run).invert(torch.stack([
        torch.from_numpy(np.array(Image.open(folders[5000] / "00007.png"))).permute(2, 0, 1).float() / 255]))
    assert np.allclose(latents[7], direct[0].numpy(), atol=1e-5)

    # memory: one shard of latents and a few batches, whatever the folder holds (5,000 images would be +49 MB)
    growth = whole["peak_rss_mib"] - small["peak_rss_mib"]
    assert growth < 20, f"peak memory grew by {growth} MiB from 1,000 to 5,000 images"


def test_unreadable_files_become_nan_rows_named_in_the_shard(encoder_run, tmp_path):
    folder = write_generated_folder(encoder_run, tmp_path / "images", 12)
    (folder / "00003.png").write_bytes(b"not a png at all")
    summary = invert_dataset(encoder_run, f"folder:{folder}", tmp_path / "out", shard_size=5, batch_size=4,
                             device="cpu", show_progress=False)
    assert summary.failed == 1 and summary.shards == 3
    latents, items = read_latents(tmp_path / "out")
    assert np.isnan(latents[3]).all() and np.isfinite(np.delete(latents, 3, axis=0)).all()
    failed = json.loads((tmp_path / "out" / "shards" / "00000.json").read_text())["failed"]
    assert [f["index"] for f in failed] == [3] and "00003.png" in failed[0]["error"]
    assert (tmp_path / "out" / "preview.png").is_file()

    info = index_latents(tmp_path / "out", ivf=False)  # the NaN row is left out of the index
    assert info["indexed"] == 11
    distances, names = search_latents(tmp_path / "out", latents[[0, 7]], k=2)
    assert names[0][0] == items[0] and names[1][0] == items[7] and distances[:, 0].max() < 1e-6


def test_other_inputs_in_the_same_out_are_refused_and_refine_refines(encoder_run, tmp_path):
    invert_dataset(encoder_run, "digits", tmp_path / "out", shard_size=600, device="cpu", show_progress=False)
    invert_dataset(encoder_run, "digits", tmp_path / "refined", shard_size=600, device="cpu", show_progress=False,
                   refine=3)
    encoded, refined = read_latents(tmp_path / "out")[0], read_latents(tmp_path / "refined")[0]
    assert np.isfinite(refined).all() and not np.allclose(encoded, refined)
    with pytest.raises(GaninvError, match="differs in refine"):
        invert_dataset(encoder_run, "digits", tmp_path / "refined", shard_size=600, device="cpu",
                       show_progress=False)
    with pytest.raises(GaninvError, match="differs in shard_size"):
        invert_dataset(encoder_run, "digits", tmp_path / "out", shard_size=500, device="cpu", show_progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(GaninvError, match="not a latent directory"):
        invert_dataset(encoder_run, "digits", tmp_path / "other", device="cpu", show_progress=False)


def test_ranks_write_disjoint_shards_equal_to_one_process(encoder_run, tmp_path):
    single = invert_dataset(encoder_run, "digits", tmp_path / "one", shard_size=300, device="cpu",
                            show_progress=False)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(free_port()), "-m", "ganinv", "invert", str(encoder_run), "--data", "digits", "--out",
               str(tmp_path / "two"), "--shard-size", "300", "--workers", "0", "--device", "cpu", "--json"]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(s["rank"] for s in summaries) == [0, 1] and {s["processes"] for s in summaries} == {2}
    assert sum(s["inverted_now"] for s in summaries) == single.n
    ours, _ = read_latents(tmp_path / "two")
    theirs, _ = read_latents(tmp_path / "one")
    assert np.array_equal(ours, theirs)
