"""Aligning real photos of faces to the geometry of aligned CelebA, so that a run trained on ``celeba:PATH`` sees
a photo framed as it saw its training images (``ganinv invert RUN photo.jpg --align``, the web page's "align face"
box, :func:`align_face`).

The target geometry. CelebA's ``img_align_celeba`` images are 178×218 with the eyes at nearly fixed places; the
project's loader then centre-crops the 178×178 square (rows 20…197, see ``images.centre_square``) and resizes it. So an
aligned photo here is that square, directly: the eye centres at (68, 91.5) and (108, 91.5) of 178 — (68, 111.5)
and (108, 111.5) in the 178×218 image, 40 px apart, level. These are the medians of this module's own detector (the
Haar eye boxes' centres) over 967 of the first 1,500 images of ``img_align_celeba`` (half-resolution copies
enlarged 2×) where it found one face and exactly one eye each side (spread: 2.4 px across, 1.3 px down), so the
detector's bias and the target cancel. They
agree with CelebA's own landmark file (``list_landmarks_align_celeba.txt``, 000001.jpg: eyes at (69, 109) and
(106, 113)). The same images give where the eyes sit in OpenCV's frontal face box (:data:`FACE_BOX_EYES`), used
when the eyes themselves are not found.

How. Faces come from OpenCV's Haar cascade (``haarcascade_frontalface_default.xml``, shipped in ``cv2.data`` by
opencv-python-headless 4.x — the 5.0 wheel dropped the cascades), searched in the photo upright and turned by ±15°
and ±30° (the cascade itself tolerates about ±15° of tilt). Eyes come from the eye cascades (``haarcascade_eye.xml``
and, for glasses, ``haarcascade_eye_tree_eyeglasses.xml``) in the upper part of the face box: of every left/right
pair, the one closest to where eyes sit in a face box, if it is close enough (:data:`MAX_EYE_OFFSET`). Of the
faces whose eyes are found, the one the detector is surest of is used (most overlapping hits: that is also the turn
that makes the face most upright); when no eyes are found anywhere, the surest face with its eyes placed where
they usually sit in its box (``info.source == "face box"``: tilt corrected only to the nearest 15°, scale good to
about ±10%). A similarity transform (rotation, scale, shift) then puts the eyes on the target; where the square
reaches past the photo's edge, the edge pixels are repeated (``info.padded``). A facial-landmark model file
(OpenCV's LBF ``lbfmodel.yaml``, 68 points; needs opencv-contrib) gives the eye centres instead, where the user
has one. FFHQ's crop (StyleGAN, pSp, e4e) from dlib's 68 landmarks is :mod:`ganinv.data.ffhq_align`; putting a
result back into the photo through the inverse of ``AlignInfo.matrix`` is :mod:`ganinv.data.paste`.

How well. 200 faces of CelebA's test split (009001…, half-resolution files enlarged 2×) pasted into 700×700
canvases, scaled 1–2.5× and turned by up to ±25°: a face was found in 195; in the 178 with eyes found, the eyes
land a median 2.6 px (90%: 5.7 px) of 178 from where the loader's square has them (CelebA's own eyes scatter by
about 2 px); in the 17 aligned from the face box, a median 10 px, and a few boxes were not the face at all; the
residual tilt is a median 1.6°. About 0.5 s a photo on one CPU core. Profiles, faces under 24 px (or 1/12 of the
photo's short side) and faces turned by more than about 45° are not found.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache

import numpy as np
import torch
from PIL import Image

from ganinv.core.errors import DataError, GaninvError
from ganinv.core.extras import require
from ganinv.data.images import ImageFiles, convert_mode, decode_image, display_path, image_to_tensor, read_each_file

__all__ = ["CELEBA_EYES", "FACE_BOX_EYES", "TARGET_EYES", "AlignInfo", "AlignedFiles", "align_face", "align_file",
           "read_aligned_files"]

CELEBA_EYES = ((68.0, 111.5), (108.0, 111.5))   # image-left, image-right eye centre in img_align_celeba's 178×218
CELEBA_SIDE, CELEBA_TOP = 178, 20               # the loader's centre square: 178×178 from row (218 - 178) // 2
TARGET_EYES = tuple((x / CELEBA_SIDE, (y - CELEBA_TOP) / CELEBA_SIDE) for x, y in CELEBA_EYES)  # of the square
FACE_BOX_EYES = ((0.296, 0.386), (0.682, 0.386))  # eye centres in the Haar face box, in units of its side
EYE_DISTANCE_IN_BOX = FACE_BOX_EYES[1][0] - FACE_BOX_EYES[0][0]
TARGET_EYE_DISTANCE = TARGET_EYES[1][0] - TARGET_EYES[0][0]  # 40 / 178 of the square's side
DETECT_SIDE = 800           # faces are searched in a copy at most this long: Haar needs no more, big photos cost
SEARCH_ANGLES = (0, 15, -15, 30, -30)  # degrees the photo is turned until a face with eyes is found
MAX_EYE_OFFSET = 0.12       # an eye pair is believed when each eye is this close (face-box sides) to its place
EYE_SEARCH_WIDTH = 240     # each face is searched for eyes at this width (px)
MAX_WARP_SIDE = 1024        # the square is cut at most this large before the final (antialiased) resize
FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")


@dataclass(frozen=True)
class AlignInfo:
    """How a photo was aligned, in its own pixels. ``source``: "eyes" (both found), "face box" (eyes placed from
    the face box alone) or "landmarks" (the user's landmark model); ``faces``: how many the detector found at the
    angle it was found at; ``face_box``: x, y, width, height of that face (upright); ``eyes``: image-left and
    image-right eye centres; ``angle_deg``: the eyes' tilt (positive: the right one lower), undone by the
    alignment; ``matrix``: the 2×3 map from photo pixels to the aligned image's; ``padded``: the square reaches past
    the photo's edge."""

    source: str
    faces: int
    face_box: tuple[float, float, float, float]
    eyes: tuple[tuple[float, float], tuple[float, float]]
    angle_deg: float
    eye_distance_px: float
    matrix: tuple[tuple[float, ...], ...]
    size: int
    padded: bool = False

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line: what was found and what was done."""
        how = {"eyes": "face and eyes found", "landmarks": "eyes from the landmark model",
               "face box": "face found but not its eyes: aligned from the face box alone",
               "ffhq": "FFHQ's crop from dlib's 68 landmarks"}
        scale = float(np.hypot(*np.array(self.matrix)[:, 0]))  # aligned pixels per photo pixel
        parts = [how[self.source], f"tilt {self.angle_deg:+.1f}° levelled",
                 f"eyes {self.eye_distance_px:.0f} px apart → {self.eye_distance_px * scale:.1f} px"]
        if self.faces > 1:
            parts.append(f"{self.faces} faces found, one used")
        if self.padded:
            parts.append("the crop reaches past the photo's edge (edge pixels repeated)")
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------------ the public API
def align_face(image, *, size: int, landmarks: str | os.PathLike | None = None) -> tuple[Image.Image, AlignInfo]:
    """A photo (PIL image of any mode, or an H×W×3 / H×W uint8 array) → (the face aligned as the square crop of
    aligned CelebA that the project's CelebA loader feeds a run: RGB, ``size``×``size``, eyes level at
    ``TARGET_EYES`` × size; and an :class:`AlignInfo`). ``landmarks``: an OpenCV LBF facemark model file for
    better eye centres. DataError when no face is found."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise DataError(f"size must be an integer of at least 4, got {size!r}")
    rgb = as_rgb(image)
    found = locate_face(np.asarray(rgb.convert("L")), landmarks)
    matrix = eye_transform(*found.eyes, side=size)
    aligned = warp(rgb, matrix, size)
    eyes = found.eyes
    angle = float(np.degrees(np.arctan2(eyes[1][1] - eyes[0][1], eyes[1][0] - eyes[0][0])))
    info = AlignInfo(source=found.source, faces=found.faces, face_box=found.box, eyes=eyes, angle_deg=angle,
                     eye_distance_px=float(np.hypot(eyes[1][0] - eyes[0][0], eyes[1][1] - eyes[0][1])),
                     matrix=tuple(map(tuple, matrix.tolist())), size=int(size),
                     padded=reaches_past_edge(matrix, size, rgb.size))
    return aligned, info


def align_file(path, size: int, channels: int, *, landmarks=None) -> tuple[torch.Tensor, AlignInfo]:
    """One image file aligned (see :func:`align_face`) as a float32 ``channels``×size×size tensor in [0, 1], with its
    AlignInfo. DataError naming the file when it cannot be read or holds no face."""
    im, _ = decode_image(path, 3)
    try:
        aligned, info = align_face(im, size=size, landmarks=landmarks)
    except DataError as exc:
        raise DataError(f"{display_path(path)}: {exc}") from None
    return image_to_tensor(convert_mode(aligned, channels)), info


@dataclass
class AlignedFiles(ImageFiles):
    """:class:`ImageFiles` whose images are aligned faces, with each one's :class:`AlignInfo`."""

    infos: list[AlignInfo] = field(default_factory=list)

    def add(self, file, image: torch.Tensor, about: AlignInfo) -> None:
        """Keep one aligned file with its AlignInfo (what ``read_each_file`` passes on from ``align_file``)."""
        self.files.append(file)
        self.images.append(image)
        self.infos.append(about)


def read_aligned_files(paths, size: int, channels: int, *, landmarks=None,
                       warn: Callable[[str], None] = lambda m: None) -> AlignedFiles:
    """Files and folders → every readable image with a face, aligned (see :func:`read_image_files`: each file left
    out — unreadable or without a face — is named with its reason through ``warn``; none left is a DataError)."""
    opencv()  # a missing extra is one line, not a skip of every photo
    check_landmarks(landmarks)  # a bad model file is the user's one mistake, not every photo's
    return read_each_file(paths, lambda f: align_file(f, size, channels, landmarks=landmarks), AlignedFiles(), warn)


# ------------------------------------------------------------------------------------------------ finding the face
@dataclass(frozen=True)
class Located:
    eyes: tuple[tuple[float, float], tuple[float, float]]  # image-left, image-right, in the photo's pixels
    box: tuple[float, float, float, float]
    faces: int
    source: str


def locate_face(grey: np.ndarray, landmarks=None) -> Located:
    """The face and its eyes in a grey photo (H×W uint8), searched in a copy at most DETECT_SIDE long, upright and
    turned by each of SEARCH_ANGLES. Of the faces whose eyes are found (else of all), the one the detector is surest
    of — most overlapping hits, which is also the turn that makes it most upright. DataError when none is found."""
    shrink = min(1.0, DETECT_SIDE / max(grey.shape))
    small = _resize_grey(grey, shrink)
    candidates = []
    for angle in SEARCH_ANGLES:
        turned, back = _turn(small, angle)
        faces = detect_faces(turned)
        to_photo = back / shrink  # turned copy → photo pixels (a similarity: scaling the matrix scales its output)
        for box, votes in faces[:2]:  # the two surest at each turn: a false hit may outvote the face
            eyes, source = find_eyes(turned, box, landmarks)
            found = Located(eyes=tuple(_apply(to_photo, p) for p in eyes), box=_box_in_photo(to_photo, box),
                            faces=len(faces), source=source)
            candidates.append((source != "face box", votes, found))
    if not candidates:
        raise DataError("no face found (OpenCV's frontal-face detector found none, upright or turned by up to "
                        f"30°): --align needs a photo with a frontal face at least {_min_face(small)[0] / shrink:.0f} "
                        "px wide; leave --align off to invert the image as it is")
    return max(candidates, key=lambda c: c[:2])[2]


def detect_faces(grey: np.ndarray) -> list[tuple[list[int], int]]:
    """(box, votes) of each face, surest first: votes counts the detector's overlapping hits, its confidence."""
    boxes, votes = _cascade(FACE_CASCADE).detectMultiScale2(grey, 1.1, 5, minSize=_min_face(grey))
    return sorted(zip(np.reshape(boxes, (-1, 4)).tolist(), np.ravel(votes).tolist()), key=lambda bv: -bv[1])


def find_eyes(grey: np.ndarray, box, landmarks=None) -> tuple[tuple, str]:
    """(image-left eye, image-right eye) in ``grey``'s pixels and where they came from: the landmark model, the
    best pair of eye detections, or (neither found) their usual place in the face box."""
    if landmarks is not None:
        return landmark_eyes(grey, box, landmarks), "landmarks"
    pair = best_eye_pair(grey, box)
    if pair is not None:
        return pair, "eyes"
    x, y, w, _ = box
    return tuple((x + u * w, y + v * w) for u, v in FACE_BOX_EYES), "face box"


def best_eye_pair(grey: np.ndarray, box) -> tuple | None:
    """The left/right pair of eye detections closest to where eyes sit in a face box, None when no pair is
    within MAX_EYE_OFFSET. Both cascades are asked, leniently (3 neighbours): glasses defeat the plain one, and a
    false hit (a nostril, an eyebrow) is rejected by the pair's geometry rather than by the detector."""
    x, y, w, h = box
    # Every face at the same width: the cascade's scale steps then meet eyes of every photo alike.
    roi = _resize_grey(grey[y:y + int(h * 0.6), x:x + w], EYE_SEARCH_WIDTH / w)
    side = roi.shape[1]
    centres = []
    for name in EYE_CASCADES:
        hits = _cascade(name).detectMultiScale(roi, 1.05, 3, minSize=(side // 10,) * 2, maxSize=(side // 2,) * 2)
        centres += [((ex + ew / 2) / side, (ey + eh / 2) / side) for ex, ey, ew, eh in np.reshape(hits, (-1, 4))]
    expected = np.array(FACE_BOX_EYES)
    best, best_cost = None, MAX_EYE_OFFSET ** 2
    for a, b in itertools.permutations(centres, 2):
        offsets = np.array([a, b]) - expected
        cost = float((offsets ** 2).sum(axis=1).max())
        if cost < best_cost and _plausible_pair(a, b):
            best, best_cost = (a, b), cost
    if best is None:
        return None
    return tuple((x + u * w, y + v * w) for u, v in best)


def _plausible_pair(a, b) -> bool:
    """Eyes (in face-box sides) about as far apart as in a face, and tilted less than the face search's step."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    return abs(np.hypot(dx, dy) - EYE_DISTANCE_IN_BOX) <= MAX_EYE_OFFSET and abs(np.degrees(np.arctan2(dy, dx))) <= 20


def landmark_eyes(grey: np.ndarray, box, path) -> tuple:
    """Eye centres as the means of the 68-point model's eye contours (points 36–41 and 42–47)."""
    facemark = _facemark(os.fsdecode(path))
    ok, points = facemark.fit(grey, np.array([box], dtype=np.int32))
    if not ok or len(points) == 0:
        raise DataError(f"the landmark model {display_path(path)} found no landmarks on the face")
    points = np.asarray(points[0]).reshape(-1, 2)
    if len(points) != 68:
        raise GaninvError(f"{display_path(path)} gives {len(points)} landmarks; a 68-point model is needed")
    return tuple(tuple(map(float, points[i:i + 6].mean(axis=0))) for i in (36, 42))


def check_landmarks(path) -> None:
    """Refuse a landmark model that cannot be used, once, before any photo is read."""
    if path is not None:
        _facemark(os.fsdecode(path))


def opencv():
    """cv2, imported when first needed (it is slow to import and only face alignment needs it), or one line naming
    the align extra."""
    return require("cv2", "align", "--align (face alignment)")


@lru_cache(maxsize=2)
def _facemark(path: str):
    cv2 = opencv()

    if not hasattr(cv2, "face"):
        raise GaninvError("--landmarks needs OpenCV's contrib modules (cv2.face), which opencv-python-headless "
                          "does not include: pip install 'opencv-contrib-python-headless<5' (it replaces "
                          "opencv-python-headless), or align without a landmark model")
    if not os.path.isfile(path):
        raise DataError(f"landmark model {display_path(path)} does not exist (an OpenCV LBF model, lbfmodel.yaml)")
    facemark = cv2.face.createFacemarkLBF()
    try:
        facemark.loadModel(path)
    except cv2.error as exc:
        raise DataError(f"cannot load the landmark model {display_path(path)}: {' '.join(str(exc).split())}") from None
    return facemark


# ------------------------------------------------------------------------------------------------ geometry
def eye_transform(left, right, *, side: int) -> np.ndarray:
    """The 2×3 similarity that takes the photo's eye centres (image-left, image-right) to TARGET_EYES in a
    ``side``×``side`` square: rotation by minus the eyes' angle, scale to the target distance, shift."""
    src = np.array([left, right], dtype=np.float64)
    dst = np.array(TARGET_EYES, dtype=np.float64) * side
    d_src, d_dst = src[1] - src[0], dst[1] - dst[0]
    scale = np.hypot(*d_dst) / max(np.hypot(*d_src), 1e-6)
    theta = np.arctan2(d_dst[1], d_dst[0]) - np.arctan2(d_src[1], d_src[0])
    linear = scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    shift = dst.mean(axis=0) - linear @ src.mean(axis=0)
    return np.hstack([linear, shift[:, None]])


def warp(rgb: Image.Image, matrix: np.ndarray, size: int) -> Image.Image:
    """Cut the square at its own resolution (at most MAX_WARP_SIDE) and resize it to ``size`` with PIL's
    antialiased bicubic — as the CelebA loader resizes — so a large photo is not aliased by sampling it
    sparsely."""
    cv2 = opencv()

    scale = np.hypot(*matrix[:, 0])  # output pixels per photo pixel
    side = int(np.clip(round(size / scale), size, max(size, MAX_WARP_SIDE)))
    pixels = np.asarray(rgb)
    if side / size * scale < 0.5:  # even the largest cut would skip photo pixels: shrink the photo first
        factor = 2 * side / size * scale
        rgb = rgb.resize((max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor))),
                         Image.Resampling.BOX)
        pixels, matrix = np.asarray(rgb), matrix @ resized_pixels(1 / factor)
    # output pixel u of size is sampled by PIL's resize below from (u + 0.5) · side / size − 0.5 of the cut, so
    # ``matrix`` stays exact at every resolution (and paste-back through it lands where the photo was cut)
    at_side = (resized_pixels(side / size) @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    cut = cv2.warpAffine(pixels, at_side, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    square = Image.fromarray(cut)
    return square if side == size else square.resize((size, size), Image.Resampling.BICUBIC)


def resized_pixels(factor: float) -> np.ndarray:
    """The 3×3 map from a picture's pixels to those of its copy resized by ``factor`` (PIL's resize: pixel centres
    at integers, edges at −0.5, so u → (u + 0.5) · factor − 0.5)."""
    shift = 0.5 * factor - 0.5
    return np.array([[factor, 0.0, shift], [0.0, factor, shift], [0.0, 0.0, 1.0]])


def reaches_past_edge(matrix: np.ndarray, size: int, photo_size: tuple[int, int]) -> bool:
    """Whether any corner of the aligned square comes from outside the photo."""
    inverse = _invert(matrix)
    corners = [_apply(inverse, (u, v)) for u in (0, size) for v in (0, size)]
    w, h = photo_size
    return any(not (-0.5 <= x <= w + 0.5 and -0.5 <= y <= h + 0.5) for x, y in corners)


# ------------------------------------------------------------------------------------------------ small helpers
def as_rgb(image) -> Image.Image:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise DataError(f"align_face takes an H×W×3 (or H×W) uint8 array, got {image.dtype} {image.shape}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise DataError(f"align_face takes a PIL image or a uint8 array, got {type(image).__name__}")
    return convert_mode(image, 3)


@cache
def _cascade(name: str):
    cv2 = opencv()

    path = os.path.join(cv2.data.haarcascades, name)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # opencv-python-headless 5.x no longer ships the cascades
        raise GaninvError(f"OpenCV's {name} is missing from {cv2.data.haarcascades} (OpenCV {cv2.__version__}); "
                          "--align needs opencv-python-headless 4.x: pip install 'opencv-python-headless>=4.8,<5'")
    return cascade


def _min_face(grey: np.ndarray) -> tuple[int, int]:
    side = max(24, min(grey.shape) // 12)  # smaller "faces" in a photo are mostly false hits
    return side, side


def _resize_grey(grey: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return grey
    h, w = grey.shape
    method = Image.Resampling.BOX if factor < 1 else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(grey).resize((max(1, round(w * factor)), max(1, round(h * factor))), method))


def _turn(grey: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``grey`` turned by ``angle`` degrees on a canvas that holds all of it, and the 2×3 matrix back."""
    cv2 = opencv()

    if angle == 0:
        return grey, np.array([[1.0, 0, 0], [0, 1.0, 0]])
    h, w = grey.shape
    c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
    out_w, out_h = int(w * c + h * s + 1), int(w * s + h * c + 1)
    forward = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    forward[:, 2] += (out_w / 2 - w / 2, out_h / 2 - h / 2)
    turned = cv2.warpAffine(grey, forward, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return turned, _invert(forward)


def _invert(matrix: np.ndarray) -> np.ndarray:
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def _apply(matrix: np.ndarray, point) -> tuple[float, float]:
    x, y = matrix @ np.array([point[0], point[1], 1.0])
    return float(x), float(y)


def _box_in_photo(to_photo: np.ndarray, box) -> tuple[float, float, float, float]:
    """A face box found in a turned, shrunk copy as an upright box of the same centre and size in the photo."""
    x, y, w, h = box
    cx, cy = _apply(to_photo, (x + w / 2, y + h / 2))
    scale = float(np.hypot(*to_photo[:, 0]))
    return cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale
