"""A folder of the user's own images, for calibrating the activation scales of imported weights.

Images (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``; any mode, converted to RGB) are taken in file-name
order, resized to the model's square input (bilinear) and returned as uint8 NCHW: the same frames
on every run, so exports stay byte-identical. Fewer images than asked are cycled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from hwcsp.errors import UserError

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class ImageFolderError(UserError, ValueError):
    pass


def image_files(root: str | Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(f"calibration images: '{root}' is not a directory")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise ImageFolderError(f"calibration images: no {', '.join(SUFFIXES)} files in '{root}'")
    return files


def folder_digest(root: str | Path) -> str:
    """sha256 over the images' names and bytes: what a build made from them depends on."""
    h = hashlib.sha256()
    for p in image_files(root):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def folder_images(root: str | Path, size: int, n: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = image_files(root)
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        p = files[i % len(files)]
        try:
            with Image.open(p) as im:
                rgb = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except (OSError, UnidentifiedImageError) as e:
            raise ImageFolderError(f"calibration image '{p}' cannot be read: {e}") from e
        out[i] = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    return out
