"""Attribute preservation and editability of inverters, judged by an attribute classifier trained on the train split.

Reconstruction numbers (PSNR, SSIM) do not say whether an inversion is *useful*: e4e (Tov et al., "Designing an
Encoder for StyleGAN Image Manipulation", 2021) trades a little reconstruction for latents that edit well. Both sides
of that trade are measured here, with one judge:

* **The judge**: the FD-domain classifier (``metrics.fid``: three strided convs, a linear head over the dataset's
  labels — CelebA's 40 attributes, or the digit class) trained on the data's **train** split for ``JUDGE_STEPS``
  steps and cached. Its accuracy on the test split is reported beside a majority-vote baseline, so a reader knows
  how far to trust it.
* **Attribute preservation** of a reconstruction: the fraction of the judge's answers (the 40 attributes, or the
  digit) that agree between an image and its reconstruction.
* **Editability** (CelebA only): InterFaceGAN-style directions (Shen et al., "Interpreting the Latent Space of GANs
  for Semantic Face Editing", 2020) found **in W from the generator's own samples** — a logistic regression of the
  judge's labels on N samples' w — are applied to each encoder's latents lifted to W+ (the same shift at every
  layer), pushing each face towards the attribute's other state by ``EDIT_STRENGTH`` standard deviations of W along
  the direction. ``flipped``: how often the judge then sees the attribute flipped; ``kept``: how many of the other
  39 it still sees as before. Directions from W samples, not from each encoder's own inversions, are e4e's point:
  an edit learnt where the generator was trained works on latents that lie there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganinv.apps.edit import attribute_direction
from ganinv.core.errors import GaninvError
from ganinv.data import open_dataset
from ganinv.inference.model import InversionModel
from ganinv.methods.spaces import latent_space, repeat_w
from ganinv.metrics.fid import domain_extractor

JUDGE_STEPS = 2000
EDIT_ATTRIBUTES = ("Smiling", "Male", "Young", "Eyeglasses")
EDIT_STRENGTH = 2.0  # standard deviations of W's samples along the direction
DIRECTION_SAMPLES = 4000
BATCH = 256


@dataclass
class AttributeJudge:
    """The attribute classifier: ``predict(images)`` is N×A booleans for multi-label data (CelebA) or the N×1 class
    for single-label data (digits)."""
    net: torch.nn.Module
    names: list[str]
    multi_label: bool

    @torch.no_grad()
    def predict(self, images: Tensor) -> Tensor:
        self.net.eval()
        logits = torch.cat([self.net.head(self.net(chunk.float().cpu())) for chunk in images.split(BATCH)])
        return logits > 0 if self.multi_label else logits.argmax(1, keepdim=True)


def attribute_judge(data: str, *, image_size: int, channels: int, steps: int = JUDGE_STEPS) -> AttributeJudge | None:
    """The judge for ``data`` (trained on its train split once, then cached), or None for unlabelled data."""
    train = open_dataset(data, image_size=image_size, channels=channels, split="train")
    if not train.label_names:
        return None
    net = domain_extractor(data, image_size=image_size, channels=channels, steps=steps).net
    return AttributeJudge(net, list(train.label_names), multi_label=train.label_names != ["digit"])


def judge_accuracy(judge: AttributeJudge, images: Tensor, labels: Tensor) -> dict[str, float]:
    """The judge's accuracy on labelled held-out images, and what always answering the majority would score."""
    truth = labels > 0.5 if judge.multi_label else labels.reshape(-1, 1)
    majority = truth.float().mean(0) > 0.5 if judge.multi_label else truth.mode(0).values
    return {"accuracy": (judge.predict(images) == truth).float().mean().item(),
            "majority baseline": (truth == majority).float().mean().item()}


def attribute_agreement(judge: AttributeJudge, originals: Tensor, reconstructions: Tensor) -> float:
    """The fraction of the judge's answers that agree between each image and its reconstruction."""
    return (judge.predict(originals) == judge.predict(reconstructions)).float().mean().item()


# --- editability ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Direction:
    name: str
    index: int  # the attribute's column in the judge's answers
    vector: Tensor  # unit, w_dim
    spread: float  # std of W's samples along it
    accuracy: float  # the logistic regression's accuracy on the samples it was fit on


def w_directions(generator: InversionModel, judge: AttributeJudge, attributes=EDIT_ATTRIBUTES,
                 n: int = DIRECTION_SAMPLES, seed: int = 0) -> list[Direction]:
    """One InterFaceGAN direction in W per attribute, from ``n`` samples of W labelled by the judge; attributes
    the data lacks, or that the judge sees on all samples or on none, have no direction (and are left out)."""
    if not judge.multi_label:
        raise GaninvError("editability needs attributes (CelebA); this data has one class label")
    view = latent_space(generator.method, "w", label="editability")
    ws = view.prior.sample(n, generator=torch.Generator().manual_seed(seed), device=generator.device)
    with torch.no_grad():
        labels = judge.predict(torch.cat([view.generate(chunk) for chunk in ws.split(BATCH)]))
    ws_np, directions = ws.float().cpu().numpy(), []
    for name in attributes:
        k = judge.names.index(name) if name in judge.names else None
        if k is None or labels[:, k].all() or not labels[:, k].any():
            continue  # not among the data's attributes, or the judge sees it on all samples or on none
        vector, spread, accuracy = attribute_direction(ws_np, labels[:, k].numpy())
        directions.append(Direction(name, k, torch.from_numpy(vector), spread, accuracy))
    return directions


def editability(model: InversionModel, judge: AttributeJudge, directions: list[Direction], images: Tensor,
                strength: float = EDIT_STRENGTH) -> dict[str, float]:
    """``flipped`` and ``kept`` (module docstring) for each direction on ``model``'s inversions of ``images``, and
    their means."""
    view = latent_space(model.method, "wplus", label="editability")
    with torch.no_grad(), model.method.eval_mode():
        latents = torch.cat([view.from_run(model.method.invert(c.to(model.device)).float())
                             for c in images.split(BATCH)])
        before = judge.predict(batched(view.generate, latents))
        scores = {}
        for d in directions:
            num_ws = latents.shape[1] // d.vector.numel()
            towards = 1.0 - 2.0 * before[:, d.index].float().to(latents.device)  # to the attribute's other state
            shift = towards[:, None] * (strength * d.spread) * repeat_w(d.vector[None].to(latents), num_ws)
            after = judge.predict(batched(view.generate, latents + shift))
            others = torch.arange(before.shape[1]) != d.index
            scores[f"{d.name} flipped"] = (after[:, d.index] != before[:, d.index]).float().mean().item()
            scores[f"{d.name} kept"] = (after[:, others] == before[:, others]).float().mean().item()
    scores["flipped"] = float(np.mean([scores[f"{d.name} flipped"] for d in directions]))
    scores["kept"] = float(np.mean([scores[f"{d.name} kept"] for d in directions]))
    return scores


def batched(generate, latents: Tensor) -> Tensor:
    return torch.cat([generate(chunk).float().cpu() for chunk in latents.split(BATCH)])


__all__ = ["AttributeJudge", "attribute_judge", "judge_accuracy", "attribute_agreement", "w_directions",
           "editability", "Direction"]
