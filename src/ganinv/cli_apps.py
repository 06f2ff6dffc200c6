"""CLI commands of the applications (search, super-resolution, clustering, editing); registered on ``cli.app``."""
from __future__ import annotations

from .cli import app, console, err_console  # noqa: F401
