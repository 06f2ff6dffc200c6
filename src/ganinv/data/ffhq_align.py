"""FFHQ-style face alignment (``ganinv invert RUN photo.jpg --aligner ffhq``): the crop StyleGAN's FFHQ generators,
pSp and e4e were trained on, from dlib's 68 facial landmarks.

The geometry (NVlabs' ffhq-dataset, as pSp's and e4e's alignment scripts repeat it). From the landmarks: the eye
centres (means of points 36–41 and 42–47), the mouth centre (mean of the corners 48 and 54), and from those the
eye-to-eye vector ``e`` and the eyes-to-mouth vector ``m``. The crop is a square whose horizontal axis is ``e``
averaged with ``m`` turned a quarter back (so a tilt of either line counts), whose half side is the larger of
2·|e| and 1.8·|m|, and whose centre sits a tenth of ``m`` below the point between the eyes. For an upright
face with |m| ≤ 1.11·|e| the eyes land at (0.375, y) and (0.625, y) of the side — a quarter of it apart — with
y = 0.5 − |m| / (40·|e|), about 0.475. Here the square is cut by a similarity transform at its own resolution and
resized with antialiasing (``align.warp``); where it reaches past the photo's edge the edge pixels are repeated,
where NVlabs' script pads by reflection and blurs the padding.

The landmark model is dlib's ``shape_predictor_68_face_landmarks.dat`` (trained on iBUG 300-W; ~100 MB). Like
torchvision's weights, it is downloaded on first use — from dlib.net, bz2-compressed — into
``$GANINV_CACHE/dlib/`` (default ``~/.cache/ganinv/dlib/``), with one line saying so; with GANINV_OFFLINE=1 (or
HF_HUB_OFFLINE=1), or when the download fails, one line names the file and where to place it. ``--landmarks PATH``
gives the file directly. Faces are found by dlib's HOG frontal-face detector, which ships inside dlib itself.
"""
from __future__ import annotations

import bz2
import os
import sys
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ganinv.core.errors import DataError, GaninvError
from ganinv.core.extras import available, require
from ganinv.core.offline import download_whole, downloads_forbidden
from ganinv.data.align import AlignedFiles, AlignInfo, as_rgb, check_landmarks, reaches_past_edge, warp
from ganinv.data.images import convert_mode, decode_image, display_path, image_to_tensor, read_each_file

__all__ = ["DLIB_MODEL_NAME", "DLIB_MODEL_URL", "FFHQ_EYE_DISTANCE", "align_face_ffhq", "choose_aligner",
           "ffhq_quad", "landmark_model", "model_cache_path", "quad_transform", "read_ffhq_files"]

DLIB_MODEL_NAME = "shape_predictor_68_face_landmarks.dat"
DLIB_MODEL_URL = f"http://dlib.net/files/{DLIB_MODEL_NAME}.bz2"
MODEL_MAX_BYTES = 160 << 20         # the real model is 99,693,937 bytes; a larger file is refused before it is read
DOWNLOAD_TIMEOUT_S = 10.0           # each connect / read waits this long: an offline machine answers in seconds
EYE_SPAN, MOUTH_SPAN, CENTRE_DROP = 2.0, 1.8, 0.1  # FFHQ's half side (× |e| or × |m|) and centre shift (× m)
FFHQ_EYE_DISTANCE = 0.25            # eye distance / crop side for an upright face (|m| ≤ 1.11·|e|)
DETECT_SIDE = 640                   # faces are searched in a copy at most this long (then upsampled once by dlib)
LEFT_EYE, RIGHT_EYE, MOUTH_CORNERS = slice(36, 42), slice(42, 48), (48, 54)  # in the 68-point (iBUG) layout

Detector = Callable[[np.ndarray], list]  # H×W×3 uint8 → [(left, top, right, bottom), …] in its pixels


# ------------------------------------------------------------------------------------------------ the geometry
def ffhq_quad(points) -> np.ndarray:
    """68 landmarks (x, y) → the FFHQ crop as its four corners: top-left, bottom-left, bottom-right, top-right
    (photo pixels, pixel centres at integers)."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise DataError(f"FFHQ alignment needs 68 finite (x, y) landmarks, got an array of shape {points.shape}")
    eye_left, eye_right = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    eyes = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = points[list(MOUTH_CORNERS)].mean(axis=0) - eyes
    across = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])  # m turned back a quarter: along e
    length = np.hypot(*across)
    if length < 1e-6:
        raise DataError("the landmarks are degenerate (eyes and mouth in one point): no face to align")
    across *= max(EYE_SPAN * np.hypot(*eye_to_eye), MOUTH_SPAN * np.hypot(*eye_to_mouth)) / length
    down = np.array([-across[1], across[0]])
    centre = eyes + CENTRE_DROP * eye_to_mouth
    return np.array([centre - across - down, centre - across + down, centre + across + down, centre + across - down])


def quad_transform(quad, size: int) -> np.ndarray:
    """The 2×3 map from photo pixels to the ``size``-sided output that takes the quad's outer edges to the output's
    (PIL's QUAD convention, as NVlabs' script uses it: the quad's corners are the corners of the edge pixels, so
    in pixel-centre coordinates they go to −0.5 and size − 0.5)."""
    quad = np.asarray(quad, dtype=np.float64)
    src = np.hstack([quad[[0, 3, 1]], np.ones((3, 1))])  # top-left, top-right, bottom-left
    dst = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5]])
    return np.linalg.solve(src, dst).T


def eye_centres(points) -> tuple[tuple[float, float], tuple[float, float]]:
    points = np.asarray(points, dtype=np.float64)
    return tuple(tuple(map(float, points[part].mean(axis=0))) for part in (LEFT_EYE, RIGHT_EYE))


# ------------------------------------------------------------------------------------------------ aligning
def align_face_ffhq(image, *, size: int, model: str | os.PathLike | None = None, detector: Detector | None = None,
                    say: Callable[[str], None] | None = None) -> tuple[Image.Image, AlignInfo]:
    """A photo (PIL image or uint8 array) → (its face cut as FFHQ's crop, RGB ``size``×``size``; an AlignInfo with
    ``source == "ffhq"``). ``model``: dlib's 68-point model file (None: the cached one, downloaded on first use);
    ``detector``: a face finder (default dlib's HOG detector). DataError when no face is found."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise DataError(f"size must be an integer of at least 4, got {size!r}")
    rgb = as_rgb(image)
    predictor = shape_predictor(os.fsdecode(landmark_model(model, say=say)))
    points, faces, box = face_landmarks(np.asarray(rgb), predictor, detector or hog_detector())
    matrix = quad_transform(ffhq_quad(points), size)
    eyes = eye_centres(points)
    (lx, ly), (rx, ry) = eyes
    info = AlignInfo(source="ffhq", faces=faces, face_box=box, eyes=eyes,
                     angle_deg=float(np.degrees(np.arctan2(ry - ly, rx - lx))),
                     eye_distance_px=float(np.hypot(rx - lx, ry - ly)), matrix=tuple(map(tuple, matrix.tolist())),
                     size=int(size), padded=reaches_past_edge(matrix, size, rgb.size))
    return warp(rgb, matrix, size), info


def face_landmarks(pixels: np.ndarray, predictor, detector: Detector) -> tuple[np.ndarray, int, tuple]:
    """(68×2 landmarks of the largest face, how many faces were found, its box as x, y, width, height)."""
    dlib = dlib_module()
    boxes = detector(pixels)
    if not boxes:
        raise DataError("no face found (dlib's frontal-face detector found none): --aligner ffhq needs a photo with "
                        "a frontal face; leave --align off to invert the image as it is")
    left, top, right, bottom = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    shape = predictor(np.ascontiguousarray(pixels), dlib.rectangle(*(int(round(v)) for v in (left, top, right,
                                                                                              bottom))))
    points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], dtype=np.float64)
    if points.shape != (68, 2):
        raise GaninvError(f"the landmark model gives {len(points)} points; FFHQ alignment needs dlib's 68-point model")
    return points, len(boxes), (float(left), float(top), float(right - left), float(bottom - top))


def hog_detector() -> Detector:
    """dlib's HOG frontal-face detector, run on a copy at most DETECT_SIDE long upsampled once (faces down to about
    40 px of the copy), its boxes in the photo's pixels."""
    detect = _dlib_detector()

    def find(pixels: np.ndarray) -> list:
        shrink = min(1.0, DETECT_SIDE / max(pixels.shape[:2]))
        small = pixels if shrink == 1.0 else np.asarray(Image.fromarray(pixels).resize(
            (max(1, round(pixels.shape[1] * shrink)), max(1, round(pixels.shape[0] * shrink))), Image.Resampling.BOX))
        return [tuple(v / shrink for v in (r.left(), r.top(), r.right(), r.bottom()))
                for r in detect(np.ascontiguousarray(small), 1)]
    return find


def align_file_ffhq(path, size: int, channels: int, *, model=None, detector=None):
    """One image file aligned as FFHQ's (see :func:`align_face_ffhq`): (channels×size×size float32 in [0, 1],
    AlignInfo). DataError naming the file when it cannot be read or holds no face."""
    im, _ = decode_image(path, 3)
    try:
        aligned, info = align_face_ffhq(im, size=size, model=model, detector=detector)
    except DataError as exc:
        raise DataError(f"{display_path(path)}: {exc}") from None
    return image_to_tensor(convert_mode(aligned, channels)), info


def read_ffhq_files(paths, size: int, channels: int, *, model=None, detector=None,
                    warn: Callable[[str], None] = lambda m: None) -> AlignedFiles:
    """Files and folders → every readable image with a face, cut as FFHQ's crop; each file left out is named with
    its reason through ``warn``. The landmark model is fetched (or refused) once, before any photo is read."""
    shape_predictor(os.fsdecode(landmark_model(model, say=warn)))
    return read_each_file(paths, lambda f: align_file_ffhq(f, size, channels, model=model, detector=detector),
                          AlignedFiles(), warn)


# ------------------------------------------------------------------------------------------------ choosing
def choose_aligner(requested: str, *, landmarks=None, trained_on: str | None = None,
                   say: Callable[[str], None] = lambda m: None) -> str:
    """"haar" or "ffhq" for ``--align`` ("auto"), ``--aligner haar`` or ``--aligner ffhq``. Auto never switches
    silently: it says which it took and why — the CelebA square for a run trained on CelebA (what it saw) or with
    an OpenCV ``--landmarks`` model; else FFHQ's crop when dlib and its model are already here (auto downloads
    nothing); else the Haar cascades, naming what FFHQ alignment lacks."""
    if requested in ("haar", "ffhq"):
        return requested
    if requested != "auto":
        raise GaninvError(f"unknown aligner {requested!r}: auto | haar | ffhq")
    celeba = "aligned with OpenCV's Haar cascades to the aligned-CelebA square"
    if landmarks is not None:
        return "haar"  # an OpenCV LBF model was asked for by name: the Haar path is the one that uses it
    if trained_on is not None and trained_on.startswith("celeba"):
        say(f"--align: faces {celeba} (the run was trained on {trained_on}; --aligner ffhq for FFHQ's crop)")
        return "haar"
    if not available("dlib"):
        say(f"--align: faces {celeba}: dlib is not installed for FFHQ's crop (pip install 'ganinv[align]')")
        return "haar"
    if not model_cache_path().is_file():
        say(f"--align: faces {celeba}: dlib's landmark model is not in {model_cache_path().parent} "
            "(--aligner ffhq downloads it)")
        return "haar"
    say("--align: faces cut as FFHQ's crop from dlib's 68 landmarks (--aligner haar for the aligned-CelebA square)")
    return "ffhq"


def check_landmark_model(aligner, landmarks, say: Callable[[str], None] = lambda m: None) -> None:
    """The landmark model aligning will use, refused in one line before any photo is read: dlib's for "ffhq"
    (``landmarks`` or the cached one, fetched now on first use), else ``landmarks`` as an OpenCV LBF model."""
    if aligner == "ffhq":
        shape_predictor(os.fsdecode(landmark_model(landmarks, say=say)))
    elif landmarks is not None:
        check_landmarks(landmarks)


# ------------------------------------------------------------------------------------------------ dlib and its model
def dlib_module():
    """dlib, imported when first needed, or one line naming the align extra."""
    return require("dlib", "align", "--aligner ffhq (dlib's facial landmarks)")


@cache
def _dlib_detector():
    return dlib_module().get_frontal_face_detector()


@lru_cache(maxsize=2)
def shape_predictor(path: str):
    """dlib's shape predictor from a file, refused in one line when it is too large or not one. (A .dat file is
    dlib's own serialisation of trees and numbers — no code in it — read by its C++ deserialiser.)"""
    dlib = dlib_module()
    if not os.path.isfile(path):
        raise DataError(f"landmark model {display_path(path)} does not exist (dlib's {DLIB_MODEL_NAME})")
    if os.path.getsize(path) > MODEL_MAX_BYTES:
        raise DataError(f"landmark model {display_path(path)} is over {MODEL_MAX_BYTES >> 20} MiB: not dlib's "
                        f"{DLIB_MODEL_NAME} (about 95 MiB)")
    try:
        return dlib.shape_predictor(path)
    except Exception as exc:  # dlib raises RuntimeError with the deserialiser's complaint
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"cannot load the landmark model {display_path(path)} (not a dlib shape predictor: "
                        f"{reason})") from None


def model_cache_path() -> Path:
    """Where the 68-point model is kept: $GANINV_CACHE/dlib/ (default ~/.cache/ganinv, as FD-domain's cache)."""
    return Path(os.environ.get("GANINV_CACHE", Path.home() / ".cache" / "ganinv")) / "dlib" / DLIB_MODEL_NAME


def landmark_model(path=None, *, say: Callable[[str], None] | None = None) -> Path:
    """The model file: ``path`` when given (it must exist), else the cached one, downloaded on first use."""
    if path is not None:
        if not os.path.isfile(path):
            raise DataError(f"landmark model {display_path(path)} does not exist (dlib's {DLIB_MODEL_NAME})")
        return Path(os.fsdecode(path))
    cached = model_cache_path()
    if not cached.is_file():
        fetch_landmark_model(cached, say or _stderr)
    return cached


def fetch_landmark_model(dest: Path, say: Callable[[str], None]) -> None:
    """Download and decompress the model into ``dest``, saying so in one line; a GaninvError naming the file and
    where to place it when downloads are off or fail."""
    forbidden = downloads_forbidden()
    if forbidden is not None:
        raise GaninvError(missing_model(dest, f"downloads are off: {forbidden}"))
    say(f"--aligner ffhq: downloading dlib's 68-point landmark model {DLIB_MODEL_URL} (64 MB) to {dest} (first use; "
        "set GANINV_OFFLINE=1 to never download)")
    try:
        download_bz2(DLIB_MODEL_URL, dest, timeout_s=DOWNLOAD_TIMEOUT_S, max_bytes=MODEL_MAX_BYTES)
    except Exception as exc:  # offline, refused, timed out, not bz2: the reason joins the one line
        reason = " ".join(str(exc).split())[:200] or "no reason given"
        raise GaninvError(missing_model(dest, f"downloading it failed: {type(exc).__name__}: {reason}")) from None


def missing_model(dest: Path, why: str) -> str:
    return (f"dlib's 68-point landmark model is not at {dest} ({why}): download {DLIB_MODEL_URL}, decompress it "
            "(bunzip2) and place it there, or give its path with --landmarks PATH")


def download_bz2(url: str, dest: Path, *, timeout_s: float, max_bytes: int) -> None:
    """``url`` (bz2) → ``dest`` decompressed, whole or not at all, at most ``max_bytes`` decompressed
    (``core.offline.download_whole``). Tests replace this function: nothing else here opens a URL."""
    inflate = bz2.BZ2Decompressor()

    def ended() -> None:
        if not inflate.eof:
            raise OSError("the download ended before the end of its bz2 stream")

    download_whole(url, dest, timeout_s=timeout_s, max_bytes=max_bytes,
                   decode=lambda chunk, room: inflate.decompress(chunk, max_length=room), check=ended)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
