"""Optional extras (pyproject's [project.optional-dependencies], ganinv.core.extras): with every optional package
missing, the core — import, train, invert — still works, and each command that needs an extra says which in one line
(exit 2).

"Missing" is simulated in a fresh interpreter, never in the test process (other tests there have imported these
modules already): each module's sys.modules entry is None (``import`` raises ModuleNotFoundError, ``find_spec`` says
None) and its distribution is hidden from importlib.metadata (torchmetrics, for one, decides from metadata whether
to import torch-fidelity).
"""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import make_generator_run
from PIL import Image

from ganinv.core.errors import GaninvError
from ganinv.core.extras import EXTRAS, require

# module -> the distribution that installs it (pyproject.toml's extras)
DISTRIBUTIONS = {"gradio": "gradio", "faiss": "faiss-cpu", "cv2": "opencv-python-headless",
                 "tensorboard": "tensorboard", "torch_fidelity": "torch-fidelity", "mlxtend": "mlxtend"}

# Runs `ganinv ARGS` for each ARGS in argv[1] (JSON) in one interpreter with the optional modules missing;
# prints [[exit status, stdout, stderr], …] as JSON.
BLOCKED_CLI = textwrap.dedent("""
    import contextlib, importlib.metadata as md, io, json, re, sys

    modules, distributions = json.loads(sys.argv[2]), set(json.loads(sys.argv[3]))
    for name in modules:
        sys.modules[name] = None
    from_name = md.Distribution.from_name.__func__

    def hidden_from_name(cls, name):
        if re.sub(r"[-_.]+", "-", name).lower() in distributions:
            raise md.PackageNotFoundError(name)
        return from_name(cls, name)

    md.Distribution.from_name = classmethod(hidden_from_name)
    import ganinv
    from ganinv import cli

    results = []
    for args in json.loads(sys.argv[1]):
        out, err, code = io.StringIO(), io.StringIO(), 0
        sys.argv = ["ganinv", *args]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code or 0
        results.append([code, out.getvalue(), err.getvalue()])
    loaded = [m for m in modules if sys.modules.get(m) is not None]
    print(json.dumps({"results": results, "loaded": loaded}))
""")


def run_blocked(commands, cwd):
    """Each command's (exit status, stdout, stderr), run with every optional module missing."""
    argv = [[str(a) for a in args] for args in commands]
    proc = subprocess.run([sys.executable, "-c", BLOCKED_CLI, json.dumps(argv), json.dumps(list(EXTRAS)),
                           json.dumps(list(DISTRIBUTIONS.values()))],
                          cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], report["loaded"]  # nothing got past the block
    return report["results"]


def assert_names_extra(result, extra):
    """Exit 2 and one `error:` line naming the extra and its pip line, no traceback (a training command warns first
    that it would train without TensorBoard)."""
    code, _, err = result
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and "ganinv[track]" not in line]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert f"needs the {extra} extra" in lines[0] and f"pip install 'ganinv[{extra}]'" in lines[0], err


def test_extras_cover_the_modules_their_distributions_install():
    assert set(EXTRAS) == set(DISTRIBUTIONS)
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    core, extras = " ".join(project["dependencies"]), project["optional-dependencies"]
    for module, extra in EXTRAS.items():
        assert DISTRIBUTIONS[module] not in core, module  # optional: not in `pip install ganinv`
        assert any(req.startswith(DISTRIBUTIONS[module]) for req in extras[extra])
    assert extras["dev"][0] == "ganinv[all]"  # the README's `pip install -e ".[dev]"`
    assert set(extras["all"][0][len("ganinv["):-1].split(",")) == set(EXTRAS.values())


def test_require_names_the_extra_and_a_broken_install_keeps_its_reason(monkeypatch):
    assert require("json", "none", "x") is json
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(GaninvError, match=r"^ganinv serve needs the web extra: pip install 'ganinv\[web\]'$"):
        require("gradio", "web", "ganinv serve")

    def broken(name, *args):  # installed, but a dependency of its own is missing: the reason is kept
        raise ModuleNotFoundError("No module named 'libfoo'", name="libfoo")

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(GaninvError, match=r"needs the search extra: .*\(importing faiss failed: No module named"):
        require("faiss", "search", "search")


@pytest.mark.slow
def test_core_works_and_each_command_names_its_missing_extra(tmp_path):
    generator = make_generator_run(tmp_path / "gen")
    from ganinv.apps.search import build_index  # with faiss (this process has every extra): a dHash index

    build_index(generator, "digits", tmp_path / "index", methods=["dhash"], limit=16, show_progress=False)
    image = tmp_path / "digit.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)).save(image)
    run = tmp_path / "aegan"
    train = ["train", "aegan", "--data", "digits", "--generator", generator, "--out", run, "--steps", 4,
             "--batch-size", 16, "--checkpoint-every", 4, "--sample-every", 4, "--eval-every", 4, "--quiet"]
    results = run_blocked([
        train,
        ["invert", run, image, "--out", tmp_path / "inverted"],
        ["serve", run],
        ["index", run, "--data", "digits", "--out", tmp_path / "index2", "--limit", 16, "--quiet"],
        ["search", tmp_path / "index", image, "--method", "dhash", "--out", tmp_path / "found.png"],
        ["invert", run, image, "--align", "--out", tmp_path / "aligned"],
        ["train", "gan", "--data", "mnist", "--out", tmp_path / "mnist-gan", "--steps", 1, "--quiet"],
    ], cwd=tmp_path)
    trained, inverted, *refused = results
    assert trained[0] == 0, trained[2]
    assert "Traceback" not in trained[2]
    # training without tensorboard: one line saying so, the run complete, no tb/
    assert sum("pip install 'ganinv[track]'" in line for line in trained[2].splitlines()) == 1, trained[2]
    assert (run / "weights.safetensors").is_file() and not (run / "tb").exists()
    assert inverted[0] == 0, inverted[2]
    assert np.load(tmp_path / "inverted" / "latents.npy").shape[0] == 1
    for result, extra in zip(refused, ["web", "search", "search", "align", "mnist"]):
        assert_names_extra(result, extra)
    assert not (tmp_path / "index2").exists() and not (tmp_path / "mnist-gan").exists()  # refused before writing


def test_no_module_imports_an_optional_extra_when_imported(tmp_path):
    """Every ganinv module but the web page's two (gradio is what they are) and __main__ imports without loading
    any extra: they are imported where they are used, not where ganinv is. (torch_fidelity is left out: `import
    torchmetrics`, a core dependency, imports it whenever it is installed; without it, the blocked test shows.)"""
    script = textwrap.dedent("""
        import importlib, json, pkgutil, sys
        import ganinv
        skip = {"ganinv.web.page", "ganinv.web.widgets"}
        for info in pkgutil.walk_packages(ganinv.__path__, "ganinv."):
            if info.name not in skip and not info.name.endswith("__main__"):  # __main__ runs the CLI
                importlib.import_module(info.name)
        print(json.dumps(sorted(m for m in json.loads(sys.argv[1]) if m in sys.modules)))
    """)
    extras = [m for m in EXTRAS if m != "torch_fidelity"]
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(extras)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
