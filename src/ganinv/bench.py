"""Kept for the import path the docs showed (``ganinv.bench.speed_options``): the suites live in
``ganinv.experiments.bench``."""
from ganinv.experiments.bench import SUITES, run_suite, speed_options  # noqa: F401
