"""The ground floor: errors, atomic file IO, configs, distributed helpers, image grids and the run directory.
Nothing here imports another ganinv package."""

__version__ = "0.1.0"
