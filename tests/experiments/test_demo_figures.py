"""The demo's report.html: both figures are labelled grids — a row "original", then one per method — with the labels
drawn inside the image, not only in the HTML around it."""
from __future__ import annotations

import base64
import io
import re

import numpy as np
import torch
from PIL import Image

from ganinv.core import viz
from ganinv.experiments import demo


def test_report_figures_are_labelled_inside_the_image(monkeypatch, tmp_path):
    calls = []

    def recording(rows, row_labels, **kwargs):
        calls.append((len(rows), row_labels, kwargs))
        return viz.labelled_grid(rows, row_labels, **kwargs)

    monkeypatch.setattr(demo, "labelled_grid", recording)
    rng = torch.Generator().manual_seed(0)
    images = [torch.rand(demo.SHOWN, 1, 28, 28, generator=rng) for _ in range(6)]
    grids = {"aegan": (images[2], images[3]), "regression": (images[4], images[5])}
    metrics = {"psnr": 20.0, "ssim": 0.5, "dhash_similarity": 0.9}
    results = {name: {"generated": metrics, "real": metrics} for name in grids}
    page = demo.write_report(tmp_path / "report.html", results, images[0], images[1], grids, budget=(1, 1),
                             seed=0).read_text()

    assert [labels for _, labels, _ in calls] == [["original", "aegan", "regression"]] * 2
    assert "generated samples" in calls[0][2]["title"] and "real test digits" in calls[1][2]["title"]
    uris = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(uris) == 2 and "width='720'" not in page
    for uri in uris:
        picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("L"))
        tile = 28 * 2 + 2  # drawn ×2 (FIGURE_TILE), 2 px apart
        label_width = picture.shape[1] - demo.SHOWN * tile - 2
        assert 40 < label_width and picture.shape[1] <= 900  # room for the names; fits the page
        assert (picture[:, :label_width] < 128).any()  # the row labels are drawn in the image's left margin
