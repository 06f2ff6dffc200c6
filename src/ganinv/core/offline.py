"""The switches that forbid downloads, read in one place by everything that may fetch a file (the LPIPS backbone
in ``ganinv.metrics.image``, dlib's landmark model in ``ganinv.data.ffhq_align``): ``GANINV_OFFLINE`` or
``HF_HUB_OFFLINE`` set to anything but 0 / false / no / off."""
from __future__ import annotations

import os

__all__ = ["OFFLINE_VARIABLES", "downloads_forbidden"]

OFFLINE_VARIABLES = ("GANINV_OFFLINE", "HF_HUB_OFFLINE")  # either one set (and not 0/false/no/off): never download
_OFF = ("0", "false", "no", "off")  # values that leave downloads allowed (an empty value too)


def downloads_forbidden() -> str | None:
    """The setting that forbids downloads (e.g. ``"GANINV_OFFLINE=1"``), or None when they are allowed. Read at
    each call, so a variable set after import counts."""
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value and value.lower() not in _OFF:
            return f"{name}={value}"
    return None
