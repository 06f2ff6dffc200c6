"""Bounds on the sizes a user may ask for, the memory estimate that refuses a request before it allocates, and the
image formats an output file's suffix may name. Plain Python (no torch), so the command line checks them before
its heavy imports, and the library checks the same numbers again for callers that are not the command line."""
from __future__ import annotations

import os
from pathlib import Path

from ganinv.core.errors import GaninvError

MAX_IMAGE_SIZE = 4096  # the largest image side: 16 megapixels, four times StyleGAN's largest (1024)
MIN_IMAGE_SIZE = 4  # data.datasets.MIN_IMAGE_SIDE: a smaller side holds no picture
MAX_SEED = 2**32 - 1  # numpy's RandomState and scikit-learn's random_state take no more; torch takes more
MAX_STEPS = 10_000_000  # training steps: about 12 days at 10 steps a second (StyleGAN2's longest schedules: 1.6M)
# an interval (log / sample / eval / checkpoint every N steps) past the run's length means never: the demo and older
# runs record 10**9; any positive int64 is harmless, since nothing is allocated per interval
MAX_INTERVAL = 2**62
MAX_GRID_COLUMNS = 64  # images per row of an edit grid: one row of 64 is already wider than any screen
MAX_GRID_ROWS = 1024
MAX_WORKERS = 256  # DataLoader worker processes: one per core of the largest machines
MAX_BATCH = 65_536
MAX_WIDTH = 4096  # channels of a net's first stage (the paper's 64; imported StyleGANs cap at 512)
MAX_LATENT_DIM = 65_536
MAX_OPT_STEPS = 1_000_000  # optimisation / tuning steps per image batch

MEMORY_SHARE = 0.5  # a request is refused when its estimate exceeds this share of the machine's memory


def physical_memory() -> int | None:
    """Bytes of memory this machine has (None where the operating system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Refuse, in one line, a request whose estimated size ``nbytes`` exceeds half this machine's memory — before
    anything is allocated (the kernel would otherwise kill the process after minutes of swapping)."""
    total = physical_memory()
    if total is not None and nbytes > MEMORY_SHARE * total:
        raise GaninvError(f"{what} would need about {gib(nbytes)} of memory, more than half of this machine's "
                          f"{gib(total)}; {advice}")


def image_bytes(n: int, channels: int, side: int, copies: int = 1) -> int:
    """float32 bytes of ``copies`` batches of n images of channels × side × side."""
    return 4 * n * channels * side * side * copies


# Output images: the format is the one the file's suffix names (Pillow's names), never PNG bytes under .jpg.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format an output image at ``path`` is written in, from its suffix; one line for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        shown = f"suffix {suffix!r}" if suffix else "no suffix"
        raise GaninvError(f"{os.fsdecode(path)}: {shown}; an image file must end in "
                          f"{', '.join(IMAGE_FORMATS)} (the suffix decides the format)")
    return IMAGE_FORMATS[suffix]
