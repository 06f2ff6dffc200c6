"""The run directory: the files a trained run holds, and the checkpoint they point at."""
import json

import torch

from ganinv.core.rundir import latest_checkpoint


def test_run_directory_layout(gan_run, aegan_run, generator_run):
    for run in (gan_run, aegan_run):
        for name in ("config.json", "checkpoint.json", "weights.safetensors", "metrics.jsonl"):
            assert (run / name).is_file(), name
        checkpoint = latest_checkpoint(run)
        assert checkpoint.step == 10 and checkpoint.state.is_file()
        assert checkpoint.weights.read_bytes() == (run / "weights.safetensors").read_bytes()
        folders = list((run / "checkpoints").iterdir())  # the newest, and the one before it until the next commit
        assert checkpoint.folder in folders and len(folders) <= 2
        assert list((run / "samples").glob("step-*.png"))
        assert list((run / "tb").iterdir())
    config = json.loads((aegan_run / "config.json").read_text())
    assert config["method"] == "aegan" and config["generator_run"] == str(generator_run.resolve())
    assert config["net"]["image_size"] == 16 and config["versions"]["torch"] == torch.__version__
    lines = [json.loads(line) for line in (aegan_run / "metrics.jsonl").read_text().splitlines()]
    evals = [line for line in lines if line["kind"] == "eval"]
    assert evals and "generated/psnr" in evals[-1] and "real/dhash_similarity" in evals[-1]
