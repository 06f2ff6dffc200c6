"""Run by test_distributed.py under `accelerate launch` (and in one process for the reference): trains a tiny
METHOD run into OUT through the same workflow the CLI uses, and records which dataset items this rank read.

    python tests/core/ddp_worker.py METHOD OUT STEPS [--resume]
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from torch.utils.data import Dataset

from ganinv.training import launch as workflows

NET = dict(image_size=16, width=8, latent_dim=8)
TRAIN = dict(batch_size=8, checkpoint_every=5, sample_every=5, eval_every=100, eval_samples=16, log_every=1,
             device="cpu")


class Recording(Dataset):
    """The training set, noting every index read (num_workers=0: reads happen in this process)."""

    def __init__(self, dataset):
        self.dataset, self.seen = dataset, []

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.seen.append(int(i))
        return self.dataset[i]


def main(method: str, out: str, steps: int, resume: bool) -> None:
    recorded = []

    def recording_data(config):
        dataset, eval_images = open_training_data(config)
        recorded.append(Recording(dataset))
        return recorded[0], eval_images

    open_training_data, workflows.open_training_data = workflows.open_training_data, recording_data
    try:
        workflows.train_run(method, out, data="digits", resume=resume, show_progress=False, net_overrides=NET,
                            train_overrides={**TRAIN, "steps": steps})
    finally:
        workflows.open_training_data = open_training_data
    rank = int(os.environ.get("RANK", 0))
    log = Path(out) / f"seen-rank{rank}.jsonl"
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(recorded[0].seen) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), "--resume" in sys.argv)
