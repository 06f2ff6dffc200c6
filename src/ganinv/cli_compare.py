"""CLI commands that compare inversion methods on one generator; registered on ``cli.app``."""
from __future__ import annotations

from .cli import app, console, err_console  # noqa: F401
