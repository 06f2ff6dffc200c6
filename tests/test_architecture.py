"""The layers of docs/design.md hold: import-linter's contracts in pyproject.toml (packages import only the ones
below them; no import cycles among the modules of any package)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    if shutil.which("lint-imports") is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run(["lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


# --- functions stay short (docs/design.md "Style"): at most 40 lines, def to last line, outside nets/ -----------------
MAX_FUNCTION_LINES = 40
# Exceptions, each with its reason (docs/design.md lists them too). Architectures in nets/ are exempt as a whole: a
# network's forward pass follows its paper's figure and reads best in one piece. Outside nets/ there is none today.
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}  # "package/module.py:function" -> why it may be longer


def long_functions(root: Path) -> dict[str, int]:
    """Every function (and method) outside nets/ longer than MAX_FUNCTION_LINES: "path:name" -> its lines."""
    import ast

    found = {}
    for path in sorted(root.rglob("*.py")):
        if "nets" in path.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found[f"{path.relative_to(root).as_posix()}:{node.name}"] = lines
    return found


def test_functions_are_at_most_40_lines_outside_nets():
    found = long_functions(ROOT / "src" / "ganinv")
    unexpected = {name: lines for name, lines in found.items() if name not in LONG_FUNCTIONS_ALLOWED}
    assert not unexpected, f"functions over {MAX_FUNCTION_LINES} lines (split them, or allow one with its reason): " \
                           f"{unexpected}"
    stale = set(LONG_FUNCTIONS_ALLOWED) - set(found)
    assert not stale, f"allowed as long but no longer long (remove from the allow-list): {stale}"


def test_the_checker_sees_a_long_function(tmp_path):
    (tmp_path / "nets").mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def f():\n{body}")
    (tmp_path / "nets" / "forward.py").write_text(f"def g():\n{body}")
    assert long_functions(tmp_path) == {"long.py:f": MAX_FUNCTION_LINES + 1}


# --- the names the command line checks at parse time are the library's -------------------------------------------
def test_the_command_lines_names_are_the_librarys():
    from ganinv.core import names
    from ganinv.core.config import PRECISIONS, PRESETS
    from ganinv.latent import PRIOR_NAMES
    from ganinv.methods import METHODS
    from ganinv.methods.spaces import SPACES
    from ganinv.training.loop import TRACKERS

    def values(enum):
        return [member.value for member in enum]

    assert values(names.MethodName) == list(METHODS)
    assert values(names.SpaceName) == list(SPACES)
    assert values(names.PriorName) == list(PRIOR_NAMES)
    assert values(names.PresetName) == list(PRESETS)
    assert values(names.Precision) == list(PRECISIONS)
    assert values(names.Tracker) == list(TRACKERS)


# --- deferred imports (docs/design.md "Deferred imports"): each outside cli/ and the lazy API says why ---------------
LAZY_API = ("__init__.py", "web/__init__.py")


def function_level_imports(root: Path) -> list[tuple[str, int, bool]]:
    """(module path, line, has a ``# deferred:`` reason on its lines or the line above) of every import inside a
    function."""
    import ast

    found = {}
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    text = "\n".join(lines[max(node.lineno - 2, 0):node.end_lineno])
                    found[(path.relative_to(root).as_posix(), node.lineno)] = "# deferred:" in text
    return [(name, line, ok) for (name, line), ok in found.items()]


def test_deferred_imports_say_why_and_the_design_doc_counts_them():
    import re

    imports = function_level_imports(ROOT / "src" / "ganinv")
    cli = [i for i in imports if i[0].startswith("cli/")]
    api = [i for i in imports if i[0] in LAZY_API]
    other = [i for i in imports if i not in cli and i not in api]
    assert [i[:2] for i in other if not i[2]] == [], "imports inside functions without a '# deferred:' reason"
    doc = " ".join((ROOT / "docs" / "design.md").read_text(encoding="utf-8").split())
    counted = re.search(r"Count today: (\d+) imports inside functions — (\d+) in `cli/`, (\d+) in the lazy public "
                        r"API .*?, (\d+) for the dependencies above", doc)
    assert counted, "docs/design.md lost its count of deferred imports"
    assert tuple(map(int, counted.groups())) == (len(imports), len(cli), len(api), len(other))
