"""The model card ``save_pretrained`` writes (README.md): what a reader of a folder or a Hub page needs to know
before using the model — the method and its paper, the generator, the data, the image size, the latent space and
the last evaluation the run recorded in its metrics.jsonl.

The card is plain Markdown behind a YAML header (``ModelCardData``), built here rather than from a Jinja template
so that it needs nothing beyond huggingface_hub itself.
"""
from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from ganinv.core.config import RunConfig
from ganinv.methods.base import GeneratorRole
from ganinv.methods.spaces import Z, parse_space

AEGAN = ("AEGAN (Luo et al.): *Learning Inverse Mapping by AutoEncoder based Generative Adversarial Nets*, "
         "arXiv:1703.10094")
PROJECTION = ("projection networks (Arfeen & Zhang): *Unsupervised Projection Networks for Generative Adversarial "
              "Networks*, arXiv:1910.00579")
PAPERS = {  # the short names and titles of the README's "Papers" table
    "gan": f"DCGAN (Radford, Metz & Chintala, arXiv:1511.06434), the generator of {AEGAN} (appendix, eq. 4)",
    "aegan": AEGAN,
    "iterative": ("ReStyle (Alaluf, Patashnik & Cohen-Or): *A Residual-Based StyleGAN Encoder via Iterative "
                  "Refinement*, arXiv:2104.02699"),
    "dlsgan": "DLSGAN (Cho & Krzyzak): *Dynamic Latent Scale for GAN Inversion*",
    "dedgan": "DED-GAN (Cho): *Inverting generator of GAN through direction embedding discriminator*",
    "bigan": ("BiGAN / ALI (Donahue et al., arXiv:1605.09782; Dumoulin et al., arXiv:1606.00704), the baseline of "
              f"{AEGAN} table 6"),
    "optimize": f"optimisation inversion (Creswell & Bharath, arXiv:1611.05644), eq. 2 of {AEGAN}",
    "wrapped": "none: a generator module of your own (``ganinv.wrap_generator``)",
}


def paper(config: RunConfig) -> str:
    """The paper a run's method comes from; regression is two methods, told apart by its options."""
    if config.method != "regression":
        return PAPERS.get(config.method, "not recorded")
    o = config.options
    if o.get("backbone", "dcgan") != "dcgan" or parse_space(o.get("space", "z")) != Z or o.get("recon_weight", 0) > 0:
        return PROJECTION
    return f"the directly trained inverse model, the baseline of {AEGAN} §2"


def generator_line(config: RunConfig, role: GeneratorRole) -> str:
    if role is GeneratorRole.TRAINED:
        return "trained jointly by this method"
    if role is GeneratorRole.PROVIDED:
        return "made outside ganinv and held by this run (never trained by ganinv)"
    kind = (config.generator or {}).get("kind", "dcgan")
    source = f" from the run {config.generator_run}" if config.generator_run else ""
    return f"a frozen {kind} generator{source} (fingerprint {config.generator_fingerprint or 'not recorded'})"


def last_evaluation(metrics_file: Path | None) -> tuple[int, dict[str, float]] | None:
    """(step, numbers) of the last evaluation in a metrics.jsonl, or None when there is none to read."""
    if metrics_file is None or not metrics_file.is_file():
        return None
    found = None
    for line in metrics_file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a half-written last line of a killed run
            continue
        if isinstance(record, dict) and record.get("kind") == "eval":
            numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k not in ("step", "kind")}
            found = (int(record.get("step", 0)), numbers)
    return found


def metrics_section(evaluation: tuple[int, dict[str, float]] | None) -> str:
    if evaluation is None:
        return "No evaluation was recorded for this run."
    step, numbers = evaluation
    rows = "\n".join(f"| {name} | {value:.4g} |" for name, value in numbers.items())
    return f"The last evaluation the run recorded (step {step}):\n\n| metric | value |\n|---|---|\n{rows}"


def card_text(model, metrics_file: Path | None, repo_id: str | None = None) -> str:
    """The card's Markdown body for an InversionModel (duck-typed: this module sits below model.py)."""
    c = model.config
    n = c.net
    space = c.options.get("space")
    where = repo_id or "PATH_OR_REPO_ID"
    return f"""# `{c.method}`: a ganinv model

An `InversionModel` of the `ganinv` library: `generate` (latents → images), `invert`
(images → latents) and `reconstruct`, for images N×C×H×W in [0, 1].

- **method**: `{c.method}` — paper: {paper(c)}
- **generator**: {generator_line(c, type(model.method).generator_role)}
- **data**: {c.data or "the generator's own samples only"}
- **image size**: {n.image_size}×{n.image_size}, {n.channels} channel{'s' if n.channels > 1 else ''}
- **latent space**: {model.prior.dim}-d, prior `{model.prior.name}`{f', space `{space}`' if space else ''}
- **seed**: {c.seed}; **versions**: {', '.join(f'{k} {v}' for k, v in c.versions.items()) or 'not recorded'}

## Metrics

{metrics_section(last_evaluation(metrics_file))}

## Use

```python
from ganinv import InversionModel
model = InversionModel.from_pretrained("{where}")   # device="auto", dtype=torch.float32 …
z_hat = model.invert(images)                        # float in [0, 1] or uint8; other sizes are resized
x_hat = model(images)                               # = model.reconstruct(images)
```

`config.json` is the run's full configuration; `model.safetensors` holds every net (and extra tensors such as a
latent scale) in ganinv's run format.
"""


def model_card(model, metrics_file: Path | None, repo_id: str | None = None) -> ModelCard:
    data = ModelCardData(library_name="ganinv", tags=["ganinv", "gan-inversion", model.config.method])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{card_text(model, metrics_file, repo_id)}")
