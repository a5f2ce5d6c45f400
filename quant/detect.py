"""Drawing detections on an image (``hwcsp detect``)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from golden.fsutil import atomic_write
from hwcsp.errors import UserError
from quant.decode import Detections

# Distinct, saturated colours (tab10-like) so neighbouring classes differ.
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
MIN_SIDE = 512  # small images are enlarged (nearest neighbour) so labels stay legible


class ImageError(UserError, OSError):
    pass


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 HWC RGB; one clear error if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image '{path}' does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise ImageError(f"image '{path}' cannot be read: {e}") from None


def draw(image: np.ndarray, det: Detections, class_names: Sequence[str]) -> Image.Image:
    """The image (enlarged to at least ``MIN_SIDE``) with one labelled box per detection."""
    h, w = image.shape[:2]
    k = max(1, math.ceil(MIN_SIDE / max(h, w)))
    im = Image.fromarray(image).resize((w * k, h * k), Image.NEAREST)
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=max(12, 6 * k))
    line = max(2, k)
    for box, score, label in sorted(zip(det.boxes, det.scores, det.labels, strict=True), key=lambda t: t[1]):
        color = PALETTE[int(label) % len(PALETTE)]
        x0, y0, x1, y1 = (float(v) * k for v in box)
        d.rectangle([x0, y0, x1, y1], outline=color, width=line)
        text = f"{class_names[int(label)]} {score:.2f}"
        tb = d.textbbox((0, 0), text, font=font)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        ty = y0 - th - 2 * line if y0 - th - 2 * line >= 0 else y1  # above the box, else below
        d.rectangle([x0, ty, x0 + tw + 2 * line, ty + th + 2 * line], fill=color)
        d.text((x0 + line, ty + line - tb[1]), text, fill=(255, 255, 255), font=font)
    return im


def save_png(im: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    atomic_write(Path(path), buf.getvalue())
