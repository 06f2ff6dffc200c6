"""`ganinv import stylegan` on hostile files (tests/hostile.py builds them): TorchScript archives that run code when
loaded the ordinary way, legacy tars with a FIFO / symlink / huge member, config bombs, billion laughs, length lies,
deep nesting. Each must end in exit 2 with one line, within 10 s and 1 GB, and no TorchScript code may run — while a
positive control shows the plain loaders would have run it."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hostile import build_corpus, torchscript_bytes

SECONDS = 10
PEAK_MB = 1024

# One subprocess runs the CLI in-process on every file (importing ganinv once), timing each and measuring its peak
# resident memory (VmHWM, reset before each file through /proc/self/clear_refs); an address-space limit 3 GB above
# the start keeps a failure from taking the machine with it.
RUNNER = textwrap.dedent("""
    import contextlib, io, json, re, resource, sys, time
    from pathlib import Path

    import ganinv.inference.stylegan  # noqa: F401  (the importer's own modules, loaded before measuring)
    from ganinv import cli

    def status(key):
        return int(re.search(rf"{key}:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") * 1024 + 3 * 2**30, hard))
    corpus, out_root = Path(sys.argv[1]), Path(sys.argv[2])
    results = {}
    for path in sorted(corpus.iterdir()):
        try:
            Path("/proc/self/clear_refs").write_text("5")  # the peak restarts at the current size
        except OSError:
            pass  # then VmHWM is the whole run's peak: a looser bound, still an upper one
        before = status("VmRSS")
        out, err = io.StringIO(), io.StringIO()
        sys.argv = ["ganinv", "import", "stylegan", str(path), "--out", str(out_root / path.name)]
        start = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code
            except BaseException as exc:  # an escape the CLI should have turned into one line
                code = f"{type(exc).__name__}: {exc}"[:300]
        results[path.name] = {"code": code, "seconds": time.perf_counter() - start, "stderr": err.getvalue(),
                              "stdout": out.getvalue(), "peak_mb": (status("VmHWM") - before) / 1024}
    print(json.dumps(results))
""")

EXPECTED = {  # what the one line says, for the files whose point is a particular refusal
    "torchscript.pt": "TorchScript", "torchscript.pkl": "TorchScript", "torchscript-renamed.bin.pkl": "TorchScript",
    "torchscript-code-only.pt": "TorchScript", "tar-fifo.pt": "tar archive", "tar-symlink.pt": "tar archive",
    "tar-huge-member.pt": "tar archive", "tar-after-legacy-magic.pt": "tar archive",
    "config-mapping-2e22.pkl": "z_dim must be an integer in [1, 2048], got 4194304",
    "config-resolution-2e30.pkl": "img_resolution must be an integer",
    "config-sg3-layers-1e9.pkl": "num_layers must be an integer",
    "config-largest-allowed.pkl": "does not fit its recorded architecture (missing:",
    "config-z-dim-text-sg2.pkl": "StyleGAN2Config.z_dim must be an integer in [1, 2048], got 'abc'",
    "config-z-dim-text-sg3.pkl": "StyleGAN3Config.z_dim must be an integer in [1, 2048], got 'abc'",
    "config-sg3-critical.pkl": "num_critical < num_layers",
    "binbytes8-2e60.pkl": "BINBYTES8 declares", "binunicode8-2e40.pkl": "BINUNICODE8 declares",
    "bytearray8-2e50.pkl": "BYTEARRAY8 declares", "binbytes-2e31.pkl": "BINBYTES declares",
    "frame-2e60.pkl": "frame of", "long4-huge.pkl": "LONG4 declares",
    "os-system.pkl": "names os.system", "list-of-range.pkl": "names builtins.range",
    "memo-index-2e32.pkl": "memo slot", "laughs-class-name.pkl": "class name is not a short string",
    "laughs-modules.pkl": "nest more than", "laughs-tuple-key.pkl": "tuple as a dict key",
    "nested-modules-1e5.pkl": "opcodes", "nested-modules-5e3.pkl": "nest more than",
    "nested-lists-1e5.pkl": "nest more than", "shared-storage-bytes.pkl": "far more work",
    "zip-tensor-beyond-storage.pt": "lies about its sizes", "zip-storage-beyond-member.pt": "the file holds 16",
    "zip-deflate-bomb.pt": "compressed", "legacy-storage-2e40.pt": "lies about its sizes",
    "legacy-tensor-beyond-storage.pt": "lies about its sizes", "truncated.pt": "truncated",
    "photo.pkl": "PNG image", "empty.pkl": "empty",
}


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    sentinel = root / "SENTINEL"
    corpus = build_corpus(root / "corpus", sentinel)
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(root / "corpus"), str(root / "out")],
                          capture_output=True, text=True, timeout=60 + SECONDS * len(corpus), cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return corpus, json.loads(proc.stdout.strip().splitlines()[-1]), sentinel, root / "out"


def test_every_hostile_file_is_refused_in_one_line_quickly_and_in_little_memory(hostile_results):
    corpus, results, sentinel, out = hostile_results
    assert set(results) == set(corpus) and len(corpus) >= 40
    assert set(EXPECTED) <= set(corpus)
    for name, r in results.items():
        lines = r["stderr"].strip().splitlines()
        assert r["code"] == 2, (name, r)
        assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r["stderr"], (name, r)
        assert str(corpus[name]) in " ".join(r["stderr"].split()), (name, "the line names the file", r)
        assert "persistent id" not in r["stderr"], (name, r)
        assert EXPECTED.get(name, "") in " ".join(r["stderr"].split()), (name, r)
        assert r["seconds"] < SECONDS, (name, r)
        assert r["peak_mb"] < PEAK_MB, (name, r)
        assert not (out / name).exists(), name  # nothing was written for a refused file
    assert not sentinel.exists()  # no TorchScript __setstate__ ran


def test_the_plain_loaders_would_have_run_the_torchscript_payload(tmp_path):
    """The positive control: in a subprocess, torch.jit.load and torch.load(weights_only=False) of the same kind of
    archive (under .pt and under .pkl) create their sentinels — so the refusal above is what kept them from it."""
    paths = {}
    for suffix in ("pt", "pkl"):
        sentinel = tmp_path / f"ran-{suffix}"
        paths[suffix] = (tmp_path / f"payload.{suffix}", sentinel)
        paths[suffix][0].write_bytes(torchscript_bytes(sentinel))
    control = textwrap.dedent(f"""
        import warnings
        import torch
        warnings.simplefilter("ignore")
        torch.jit.load({str(paths["pt"][0])!r})
        torch.load({str(paths["pkl"][0])!r}, weights_only=False)  # the call ganinv never makes on a user's file
    """)
    proc = subprocess.run([sys.executable, "-c", control], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert paths["pt"][1].exists() and paths["pkl"][1].exists()


def test_the_importer_never_calls_torch_load_with_its_full_unpickler():
    src = Path(__file__).resolve().parents[2] / "src"
    found = [f"{path}:{n}" for path in sorted(src.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if "weights_only=False" in line.replace(" ", "") or "jit.load(" in line]
    assert found == []
