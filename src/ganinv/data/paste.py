"""Pasting an aligned face back into its photo (``ganinv invert RUN photo.jpg --align --paste-back``): the
reconstruction (or an edit of it) goes back through the inverse of the alignment's similarity transform, blended
with a mask that is 1 inside the square and falls to 0 over its outer ``feather`` pixels, so the photo outside the
square is untouched — bit for bit — and the seam is soft.

A reconstruction is usually smaller than the face it replaces (16–256 px against hundreds of photo pixels): it is
enlarged with bicubic interpolation and looks as sharp as the run's resolution allows. One sharper than the photo's
face is first reduced with antialiasing to the photo's scale."""
from __future__ import annotations

import numpy as np
from PIL import Image

from ganinv.core.errors import DataError
from ganinv.data.align import opencv, resized_pixels

__all__ = ["FEATHER_FRACTION", "feather_mask", "paste_back"]

FEATHER_FRACTION = 1 / 16  # the mask's soft edge, as a fraction of the crop's side (FFHQ's crop: hair, background)


def paste_back(photo: np.ndarray, crop: np.ndarray, matrix, *, size: int | None = None,
               feather_px: float | None = None) -> np.ndarray:
    """``photo`` (H×W×3 uint8, the picture that was aligned) with ``crop`` (s×s×3 or s×s uint8: the aligned face,
    a reconstruction or an edit of it) put back where ``matrix`` (2×3, photo pixels → the aligned picture's at side
    ``size``, default s: ``AlignInfo.matrix``) cut it from. ``feather_px``: the soft edge in crop pixels (default
    FEATHER_FRACTION of s). A new H×W×3 uint8 array; pixels the mask leaves at 0 are the photo's, exactly."""
    photo, crop = _checked(photo, crop)
    side = crop.shape[0]
    to_crop = (resized_pixels(side / (size or side)) @ np.vstack([np.asarray(matrix, dtype=np.float64), [0, 0, 1]]))
    fraction = FEATHER_FRACTION if feather_px is None else feather_px / side
    crop, to_crop = _at_photo_scale(crop, to_crop)
    feather = max(1.0, fraction * crop.shape[0])
    cv2 = opencv()
    height, width = photo.shape[:2]
    inverse = cv2.WARP_INVERSE_MAP  # the matrix maps photo → crop: each photo pixel samples the crop
    face = cv2.warpAffine(crop, to_crop[:2], (width, height), flags=cv2.INTER_CUBIC | inverse,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    mask = cv2.warpAffine(feather_mask(crop.shape[0], feather), to_crop[:2], (width, height),
                          flags=cv2.INTER_LINEAR | inverse, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    mask = np.clip(mask, 0.0, 1.0)[:, :, None]
    blended = np.clip(np.rint(photo + mask * (face - photo)), 0, 255).astype(np.uint8)
    return np.where(mask > 0, blended, photo)


def feather_mask(side: int, feather: float) -> np.ndarray:
    """side×side float32: 1 inside, falling linearly over ``feather`` pixels to 0 at the outermost pixels (per axis,
    multiplied): so the mask sampled between pixels (bilinear) is 0 everywhere past the outermost pixel centres —
    what lies beyond them in the photo stays the photo's."""
    index = np.arange(side, dtype=np.float32)
    ramp = np.clip(np.minimum(index, side - 1 - index) / np.float32(feather), 0.0, 1.0)
    return np.outer(ramp, ramp).astype(np.float32)


def _checked(photo, crop) -> tuple[np.ndarray, np.ndarray]:
    """The photo as H×W×3 uint8 and the crop as a square s×s×3 uint8 (a grey crop repeated in each channel)."""
    photo, crop = np.asarray(photo), np.asarray(crop)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise DataError(f"paste_back takes the photo as H×W×3 uint8, got {photo.dtype} {photo.shape}")
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    if crop.ndim == 2:
        crop = np.repeat(crop[:, :, None], 3, axis=2)
    if crop.dtype != np.uint8 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1] or crop.shape[0] < 2:
        raise DataError(f"paste_back takes a square crop as s×s×3 (or s×s) uint8, got {crop.dtype} {crop.shape}")
    return photo, np.ascontiguousarray(crop)


def _at_photo_scale(crop: np.ndarray, to_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A crop with more pixels than the photo region it came from, reduced (antialiased) to about the photo's
    scale, with the map adjusted; else as it is — so sampling it at photo pixels skips none of its detail."""
    scale = float(np.hypot(*to_crop[:2, 0]))  # crop pixels per photo pixel
    if scale <= 1.0:
        return crop, to_crop
    side = max(2, int(np.ceil(crop.shape[0] / scale)))
    smaller = np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.BICUBIC))
    return smaller, resized_pixels(side / crop.shape[0]) @ to_crop
