"""The head and tables of every benchmark report (``ganinv bench``, ``reproduce``, the frontier): the machine,
versions, seed and exact command first, then Markdown tables of the measured rows."""
from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np
import torch

from ganinv.core import __version__


def header(suite: str, *, seed: int, command: str | None = None, data: str | None = None) -> str:

    cmd = command if command is not None else " ".join(["python"] + sys.argv)
    lines = [f"# ganinv bench {suite}", "",
             f"- command: `{cmd}`",
             f"- machine: {platform.node()} · {platform.machine()} · {os.cpu_count()} CPU cores · "
             f"torch threads {torch.get_num_threads()} · "
             + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"),
             f"- versions: ganinv {__version__} · torch {torch.__version__} · python {platform.python_version()} · "
             f"numpy {np.__version__}",
             f"- seed: {seed}" + (f" · data: {data}" if data else ""),
             f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}", "", ""]
    return "\n".join(lines)


def md_table(rows: list[dict], columns: list[str] | None = None, digits: int = 4) -> str:
    if not rows:
        return "(no rows)\n"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.{digits}g}" if np.isfinite(v) else str(v)
        return "" if v is None else str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out) + "\n"
