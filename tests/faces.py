"""Faces for the alignment tests (``from faces import …``; tests/ is on sys.path): a drawn face whose eye centres
are known exactly, and a real photo that ships inside an installed package (matplotlib's sample
``grace_hopper.jpg``), each placed in a larger canvas and turned. Nothing is downloaded."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DRAWN_EYES = ((118, 130), (182, 130))  # eye centres of the drawn face in its own 300×300 frame


def drawn_face(angle: float = 0.0, canvas: int = 600, background=(60, 80, 70)):
    """(RGB image, [image-left eye, image-right eye]): a cartoon face (skin ellipse, dark eyes, brows, nose, mouth;
    blurred like a photo) in the middle of a ``canvas``-sided image turned by ``angle`` degrees counter-clockwise,
    and where its eye centres are afterwards. OpenCV's Haar cascades find this face and both eyes."""
    im = Image.new("RGB", (canvas, canvas), background)
    draw = ImageDraw.Draw(im)
    o = canvas // 2 - 150
    draw.ellipse((o + 75, o + 50, o + 225, o + 260), fill=(200, 170, 150))
    for cx, cy in DRAWN_EYES:
        draw.ellipse((o + cx - 18, o + cy - 10, o + cx + 18, o + cy + 10), fill=(40, 30, 30))
        draw.rectangle((o + cx - 22, o + cy - 25, o + cx + 22, o + cy - 20), fill=(90, 60, 50))
    draw.polygon([(o + 150, o + 140), (o + 140, o + 185), (o + 160, o + 185)], fill=(170, 140, 120))
    draw.ellipse((o + 120, o + 205, o + 180, o + 222), fill=(120, 60, 60))
    im = im.filter(ImageFilter.GaussianBlur(3)).rotate(angle, resample=Image.Resampling.BICUBIC)
    return im, [turned_point((o + x, o + y), angle, canvas, canvas) for x, y in DRAWN_EYES]


def turned_point(point, angle: float, width: int, height: int) -> tuple[float, float]:
    """Where ``point`` goes when PIL's ``rotate(angle)`` turns a width×height image about its centre."""
    theta = np.radians(angle)
    x, y = point[0] - width / 2, point[1] - height / 2
    return (x * np.cos(theta) + y * np.sin(theta) + width / 2, -x * np.sin(theta) + y * np.cos(theta) + height / 2)


def photo_path():
    """matplotlib's sample photo of Grace Hopper (512×600, a frontal face with glasses), or None without it."""
    try:
        from matplotlib import cbook

        return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    except (ImportError, OSError, ValueError):
        return None


def pasted_photo(angle: float, canvas: tuple[int, int] = (1000, 900), at: tuple[int, int] = (200, 150)):
    """The sample photo pasted into a larger canvas of flat blue-grey and turned by ``angle`` degrees: a face
    photo that is not an aligned crop."""
    photo = Image.open(photo_path()).convert("RGB")
    im = Image.new("RGB", canvas, (90, 120, 150))
    im.paste(photo, at)
    return im.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(90, 120, 150))
