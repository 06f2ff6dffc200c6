"""Kept for the import path the README showed: hybrid inversion now lives in ``ganinv.inference.hybrid``."""
from ganinv.inference.hybrid import REFINE_LR, OptimizingModel, refine, with_refinement  # noqa: F401
