"""Progress of long work that reads well in a terminal *and* in a log file.

In a terminal: a rich progress bar. When the output is a file or a pipe (``nohup … > log``) a bar cannot redraw, so
rich would print nothing until the end; there a plain line is written instead every ``LINE_EVERY`` seconds and
once at the end: ``gan  700/2000 (35%)  elapsed 9m40s  eta 17m56s  d_loss 0.4212  g_loss 4.7399``.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

LINE_EVERY = 30.0  # seconds between lines in a log file


def progress(enabled: bool, *columns, console: Console | None = None):
    """A rich ``Progress`` with ``columns`` in a terminal, a ``LineProgress`` in a log file, a disabled one when
    ``enabled`` is False. Both take ``add_task``, ``update``, ``advance`` and work as context managers."""
    console = console or Console(stderr=False)
    if enabled and not console.is_terminal:
        return LineProgress(stream=console.file)
    columns = columns or (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=not enabled)


class LineProgress:
    """The log-file face of a progress bar: one line per task every ``every`` seconds, and one at the end."""

    def __init__(self, stream=None, every: float = LINE_EVERY):
        self.stream = stream or sys.stdout
        self.every = every
        self.tasks: dict[int, dict] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        for task_id in self.tasks:
            self._line(task_id)

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **fields) -> int:
        task_id = len(self.tasks)
        now = time.monotonic()
        self.tasks[task_id] = {"description": description, "total": total, "completed": completed,
                               "start_completed": completed, "started": now, "last": now, "fields": fields}
        return task_id

    def update(self, task_id: int, *, advance: float = 0, completed: float | None = None, **fields) -> None:
        task = self.tasks[task_id]
        task["completed"] = completed if completed is not None else task["completed"] + advance
        task["fields"].update({k: v for k, v in fields.items() if k not in ("total", "description")})
        if time.monotonic() - task["last"] >= self.every:
            self._line(task_id)

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def _line(self, task_id: int) -> None:
        task = self.tasks[task_id]
        now = time.monotonic()
        task["last"] = now
        done, total, elapsed = task["completed"], task["total"], now - task["started"]
        parts = [task["description"], f"{done:g}/{total:g} ({100 * done / total:.0f}%)" if total else f"{done:g}",
                 f"elapsed {_duration(elapsed)}"]
        rate = (done - task["start_completed"]) / elapsed if elapsed > 0 else 0
        if total and rate > 0:
            parts.append(f"eta {_duration((total - done) / rate)}")
        parts += [str(v) for v in task["fields"].values() if str(v)]
        print("  ".join(parts), file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
