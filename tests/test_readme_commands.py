"""Every `ganinv …` command a user is shown — README.md's ```bash blocks and the usage lines of `ganinv COMMAND
--help` — runs and exits 0, on tiny data, in README order in one folder (later commands use the runs earlier ones
trained, as a reader following the README would).

A README command once was refused by the program and nobody noticed; here every command is either run or named in
SKIP with its reason, and a command that appears in README without being in either fails the test. What the reader
types is kept; only three documented tables stand between it and the run:

- FIXTURES: the README's example inputs (photo.jpg, faces/, celeba:PATH, network-snapshot.pkl, mypkg.nets:make_g,
  runs/dlsgan, …) made in the folder under the same names, tiny; usage placeholders (`RUN`, `INDEX`, `DIR`,
  `SPEC`, `celeba:PATH`) mapped in README_PLACEHOLDERS / HELP_PLACEHOLDERS;
- OVERRIDES: flags appended to make a command tiny (`--steps 2`, 16 px nets, `--tune 2`, `--budget smoke`); a
  flag given twice takes its last value, so the README's own flags are still parsed and checked;
- SKIP: the few that take minutes even when made small, each with its reason (their flags are still parsed).
  (`pip install`, `python -m pytest` are not ganinv commands; `accelerate launch … -m ganinv ARGS` runs ARGS on one
  process: no GPUs here; FRESH lists the one command that starts a README section afresh.)

README syntax: `\\` continuations are joined, `# comments` dropped, `a && b` is two commands, `[--x]` optional flags
are included (the first choice of `[--a | --b]`).
"""
from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY_NET, TINY_TRAIN, make_celeba, run_cli, tiny_stylegan, write_nvlabs_pickle

README = Path(__file__).resolve().parents[1] / "README.md"

# ----------------------------------------------------------------------------------------- what cannot run here
SKIP = {  # the README command, as extracted (whitespace collapsed) → why it is not run
    "ganinv demo": "minutes even with --quick (fixed 32 px nets, 1,000 GAN steps); run_demo(quick=True) is run by "
                   "tests/experiments/test_demo_eval_agree.py",
    "ganinv reproduce --data celeba:PATH --out repro --budget cpu":
        "trains about twenty runs (a minute even at --budget smoke); tests/experiments/test_reproduce.py runs the "
        "smoke budget and this command line's refusal of a second budget",
    "ganinv ablate dlsgan --data mnist --quick --out ablation/":
        "eight DLSGAN runs over whole MNIST epochs plus an FD classifier (minutes at --quick); "
        "tests/experiments/test_ablation.py runs the grid on a tiny budget",
}
FRESH = {  # a README command → why its --out is removed before it runs
    "ganinv import stylegan network-snapshot.pkl --out runs/sg":
        "it starts the section 'Invert real photos fast' for its own reader, who has no runs/sg yet (a reader of "
        "'Bring your StyleGAN' above is told in one line that runs/sg already holds a run)",
}
LAUNCHER = re.compile(r"^accelerate launch .*?-m ganinv ")  # several GPUs: its ganinv arguments run on one process

# ------------------------------------------------------------------------------------------ README's inputs
# Usage placeholders → what stands for them here: README's (`celeba:PATH`, `ganinv serve RUN [--index INDEX]`: the
# run and index its earlier commands made) and the --help texts' (a run of the workspace itself, so they run alone).
README_PLACEHOLDERS = {"celeba:PATH": "celeba:{ws}/celeba", "RUN": "runs/aegan", "INDEX": "runs/index"}
HELP_PLACEHOLDERS = {"RUN": "runs/dlsgan", "DIR": "help-out/{n}", "SPEC": "digits"}
GENERATOR_SOURCE = '''
import torch.nn as nn

def make_g():  # the README's `mypkg.nets:make_g`: 128 latents -> 1x16x16 in (-1, 1)
    return nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 256), nn.Tanh(), nn.Unflatten(1, (1, 16, 16)))
'''


def picture(seed: int, size=(20, 24)) -> Image.Image:
    """A smooth random colour field (JPEG keeps it)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.BILINEAR)


def make_images(ws: Path) -> None:
    """photo.jpg (a drawn face OpenCV finds, for --align), query/face/a/b.jpg, and the folders more/, photos/,
    faces/ of small colour images."""
    from faces import drawn_face

    drawn_face(canvas=300)[0].save(ws / "photo.jpg")
    for seed, name in enumerate(("query.jpg", "face.jpg", "a.jpg", "b.jpg")):
        picture(seed).save(ws / name)
    for folder, count in (("more", 2), ("photos", 80), ("faces", 12)):  # photos/: for `index-latents --ivf`
        (ws / folder).mkdir()
        for i in range(count):
            picture(100 + i).save(ws / folder / f"{i:03d}.jpg")


def make_generators(ws: Path) -> None:
    """network-snapshot-005000.pkl / network-snapshot.pkl (a tiny NVlabs StyleGAN2 snapshot), mypkg.nets:make_g
    with g.safetensors, and runs/dlsgan (a one-step style-generator run, for `--generator runs/dlsgan`)."""
    from safetensors.torch import save_file

    from ganinv.training.launch import train_run

    net, kwargs = tiny_stylegan("stylegan2")
    for name in ("network-snapshot-005000.pkl", "network-snapshot.pkl"):
        write_nvlabs_pickle(ws / name, net, kwargs)
    (ws / "mypkg").mkdir()
    (ws / "mypkg" / "__init__.py").write_text("")
    (ws / "mypkg" / "nets.py").write_text(GENERATOR_SOURCE)
    namespace: dict = {}
    exec(GENERATOR_SOURCE, namespace)
    torch.manual_seed(0)
    save_file(namespace["make_g"]().state_dict(), ws / "g.safetensors")
    train_run("dlsgan", ws / "runs" / "dlsgan", data="digits", show_progress=False,
              net_overrides={**TINY_NET, "prior": "normal"}, train_overrides={**TINY_TRAIN, "steps": 1})


FIXTURES = {  # README name → what the workspace holds under it (made by `workspace`)
    "celeba:PATH": "make_celeba: 80 train, 4 valid, 12 test 20×24 JPEGs with 4 attributes",
    "photo.jpg": "a drawn face OpenCV's cascades find (tests/faces.py)",
    "query.jpg, face.jpg, a.jpg, b.jpg": "20×24 colour JPEGs",
    "more/, photos/, faces/": "folders of 2, 80 and 12 such JPEGs",
    "network-snapshot-005000.pkl, network-snapshot.pkl": "a 16 px StyleGAN2 in NVlabs' pickle (helpers)",
    "mypkg.nets:make_g, g.safetensors": "a 128-latent MLP generator of 1×16×16 images and its weights",
    "runs/dlsgan": "a one-step 16 px DLSGAN run (the README trains runs/dls; other sections say runs/dlsgan)",
}

# --------------------------------------------------------------------------------------- what makes it tiny
TINY_NETS = ["--image-size", "16", "--width", "8", "--latent-dim", "8"]  # post-hoc methods take their generator's
OVERRIDES = [  # (the command's first words, flags appended when the README command has this flag or always: None)
    (("train",), None, ["--steps", "2", "--batch-size", "4", "--quiet"]),
    (("train", "gan"), None, TINY_NETS),
    (("train", "bigan"), None, TINY_NETS),
    (("train", "dlsgan"), None, TINY_NETS),
    (("train", "dedgan"), None, TINY_NETS),
    (("train", "iterative"), None, ["-o", "steps=2"]),
    (("invert",), "--refine", ["--refine", "2"]),
    (("invert",), "--tune", ["--tune", "2"]),
    (("invert",), "--data", ["--batch-size", "8", "--workers", "0", "--quiet"]),
    (("eval",), None, ["--n", "8"]),
    (("index",), None, ["--batch-size", "16", "--quiet"]),
    (("eval-search",), None, ["--queries", "4", "--quiet"]),
    (("eval-superres",), None, ["--n", "4", "--sigmas", "1", "--factors", "2"]),
    (("cluster",), None, ["--n", "24", "--quiet"]),
    (("compare",), None, ["--train-steps", "2", "--bigan-steps", "2", "--optimize-steps", "3", "--refine-steps",
                          "2", "--n", "8", "--n-real", "8", "--batch-size", "8"]),
    (("bench", "frontier"), None, ["--budget", "smoke", "--quiet"]),
    (("wrap",), None, ["--width", "8"]),
    (("serve",), None, ["--port", "{port}"]),  # a free port; serving stops at once (see `no_serving`)
]


# ------------------------------------------------------------------------------------------------ extraction
def readme_commands(text: str) -> list[str]:
    """Every ganinv command in the text's ```bash blocks, in order, as one line each (whitespace collapsed)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n", " ", block).splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line)
            for part in line.split("&&"):
                part = " ".join(part.split())
                if part.startswith("ganinv ") or " -m ganinv " in part:
                    commands.append(part)
    return commands


def help_commands() -> list[str]:
    """The `ganinv …` usage lines quoted in backticks in every command's --help text (lines that name only a
    command, such as `ganinv index`, are references, not usage)."""
    import typer.main

    from ganinv.cli import app

    found = []
    for command in leaf_commands(typer.main.get_command(app)):
        texts = [command.help or "", *(getattr(p, "help", "") or "" for p in command.params)]
        for quoted in re.findall(r"`(ganinv [^`]+)`", " ".join(texts)):
            quoted = " ".join(quoted.split())
            if re.search(r"\s-", quoted) and quoted not in found:
                found.append(quoted)
    return found


def leaf_commands(command):
    """Every command under a group (`bench frontier`, not `bench`), in `ganinv --help` order."""
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield command
        return
    for sub in subcommands.values():
        yield from leaf_commands(sub)


def to_argv(command: str, placeholders: dict, ws: Path, n: int) -> list[str]:
    """The README line as the argv a shell passes (without `ganinv`), its placeholders and optional brackets
    resolved and the OVERRIDES appended."""
    command = LAUNCHER.sub("ganinv ", command)
    command = re.sub(r"\[([^\]|]*?)(\s*\|[^\]]*)?\]", r"\1", command)  # [--a | --b] → --a
    words = shlex.split(command)[1:]
    words = [placeholders.get(word, word).format(ws=ws, n=n) for word in words]
    for prefix, needs, extra in OVERRIDES:
        if tuple(words[:len(prefix)]) == prefix and (needs is None or needs in words):
            words += extra
    return words


# ------------------------------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("readme")
    make_celeba(ws / "celeba", n_train=80)  # --ivf trains on at least 78
    make_images(ws)
    make_generators(ws)
    return ws


@pytest.fixture()
def no_serving(monkeypatch):
    """`ganinv serve` builds and launches its page, then returns instead of serving until Ctrl-C."""
    import ganinv.web.page as page

    monkeypatch.setattr(page, "serve_until_stopped", lambda blocks, log: blocks.close())


def run_all(commands, placeholders, ws, monkeypatch, capsys):
    from helpers import free_port

    monkeypatch.chdir(ws)
    monkeypatch.setenv("GANINV_CACHE", str(ws / "cache"))  # FD-domain's classifier: not the user's ~/.cache
    monkeypatch.syspath_prepend(str(ws))  # mypkg.nets, as `pip install -e` of the user's package would
    failures = []  # all of them, not the first: one run shows every README line to fix
    for n, command in enumerate(commands):
        if command in SKIP:
            continue
        if command in FRESH:
            words = to_argv(command, placeholders, ws, n)
            shutil.rmtree(ws / words[words.index("--out") + 1], ignore_errors=True)
        argv = [w.replace("{port}", str(free_port())) for w in to_argv(command, placeholders, ws, n)]
        code, out, err = run_cli(monkeypatch, capsys, *argv)
        if code != 0:
            failures.append(f"{command}\n  ganinv {shlex.join(argv)}\n  exit {code}: {err.strip()[-800:]}")
    sys.modules.pop("mypkg.nets", None)
    sys.modules.pop("mypkg", None)
    return failures


def test_every_readme_command_runs(workspace, no_serving, monkeypatch, capsys):
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 40  # the extraction found the blocks
    failures = run_all(commands, README_PLACEHOLDERS, workspace, monkeypatch, capsys)
    assert not failures, "\n\n".join(failures)
    for named in re.findall(r"`(ganinv-out/[^`]+)`", README.read_text(encoding="utf-8")):
        assert (workspace / named).is_file(), f"README names {named}; the commands above did not write it"


def test_every_help_usage_line_runs(workspace, monkeypatch, capsys):
    commands = help_commands()
    assert commands  # `ganinv train iterative --generator RUN --out DIR`, …
    failures = run_all(commands, HELP_PLACEHOLDERS, workspace, monkeypatch, capsys)
    assert not failures, "\n\n".join(failures)


def test_skipped_commands_are_still_in_readme_and_parse():
    """SKIP holds no stale entry, and the commands it holds are at least accepted by the command line's parser
    (every flag exists and takes its value), though not run."""
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert not set(SKIP) - set(commands), "SKIP names commands README no longer has"
    for command in SKIP:
        assert parse_only(to_argv(command, README_PLACEHOLDERS, Path("ws"), 0)) == command.split()[1], command


def parse_only(argv: list[str]) -> str:
    """Parse ``ganinv ARGV`` as the command line would, without running it; the command's name (click raises a
    UsageError on an unknown command or option, or a bad value)."""
    import typer.main

    from ganinv.cli import app

    command = typer.main.get_command(app)
    ctx = command.make_context("ganinv", list(argv))
    while getattr(command, "commands", None):  # a group: the words after its own options name the subcommand
        name, command, rest = command.resolve_command(ctx, [*getattr(ctx, "_protected_args", []), *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return command.name


def test_extraction_handles_continuations_comments_and_chains():
    text = "```bash\nganinv a --x 1 \\\n   --y 2   # note\nganinv b && ganinv c # c\npip install x\n```\n"
    assert readme_commands(text) == ["ganinv a --x 1 --y 2", "ganinv b", "ganinv c"]
    assert to_argv("ganinv search idx q.jpg [--factor 4 | --sigma 2] [--json]", {}, Path("/w"), 0) == \
        ["search", "idx", "q.jpg", "--factor", "4", "--json"]
