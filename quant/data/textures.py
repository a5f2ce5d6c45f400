"""Photographic backgrounds: scikit-image's bundled images, split into train and val regions.

Every image ships inside the scikit-image wheel, so nothing is downloaded. Each texture is cut once
along its longer axis: the first ``TRAIN_FRACTION`` of that axis is the *train region*, the rest is
the *val region*. Crops never leave their region, so no val pixel is ever seen in training while both
splits still cover the same kinds of scene (a whole-texture split would make val a different domain).

``skimage.data.cat`` is left out because it is the same array as ``chelsea``; ``horse`` and
``binary_blobs`` are boolean masks, not photographs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import skimage.data
from skimage.transform import resize

TEXTURE_NAMES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
TRAIN_FRACTION = 0.7
SPLITS: tuple[str, ...] = ("train", "val")


@dataclass(frozen=True)
class Region:
    """A half-open pixel rectangle ``[y0, y1) x [x0, x1)`` of one texture."""

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def short_side(self) -> int:
        return min(self.y1 - self.y0, self.x1 - self.x0)

    def contains(self, other: Region) -> bool:
        return self.y0 <= other.y0 and self.x0 <= other.x0 and other.y1 <= self.y1 and other.x1 <= self.x1

    def intersects(self, other: Region) -> bool:
        return self.y0 < other.y1 and other.y0 < self.y1 and self.x0 < other.x1 and other.x0 < self.x1


@dataclass(frozen=True)
class Crop:
    """Where a background came from: a square of ``texture`` plus the flips applied after resizing."""

    texture: str
    region: Region
    flip_h: bool
    flip_v: bool


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


@cache
def load_texture(name: str) -> np.ndarray:
    """RGB uint8 HWC copy of one bundled image (grey images are replicated to three channels)."""
    if name not in TEXTURE_NAMES:
        raise ValueError(f"unknown texture {name!r}; known: {', '.join(TEXTURE_NAMES)}")
    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype != np.uint8:
        raise TypeError(f"texture {name!r} has dtype {img.dtype}, expected uint8")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3])
    img.setflags(write=False)
    return img


@cache
def _texture_shape(name: str) -> tuple[int, int]:
    h, w = load_texture(name).shape[:2]
    return h, w


def texture_region(name: str, split: str) -> Region:
    """The part of texture ``name`` that ``split`` may crop from (train and val never intersect)."""
    check_split(split)
    h, w = _texture_shape(name)
    if w >= h:
        cut = int(w * TRAIN_FRACTION)
        return Region(0, 0, h, cut) if split == "train" else Region(0, cut, h, w)
    cut = int(h * TRAIN_FRACTION)
    return Region(0, 0, cut, w) if split == "train" else Region(cut, 0, h, w)


def random_crop(rng: np.random.Generator, split: str, size: int) -> tuple[np.ndarray, Crop]:
    """A ``size``x``size`` RGB uint8 background cut from a random texture's ``split`` region.

    The square's side is drawn between ``max(48, size // 2)`` (capped by the region) and the region's
    short side, so the scene scale varies; it is then resampled to ``size``.
    """
    name = TEXTURE_NAMES[int(rng.integers(len(TEXTURE_NAMES)))]
    region = texture_region(name, split)
    short = region.short_side
    side = int(rng.integers(min(short, max(48, size // 2)), short + 1))
    y0 = region.y0 + int(rng.integers(region.y1 - region.y0 - side + 1))
    x0 = region.x0 + int(rng.integers(region.x1 - region.x0 - side + 1))
    flip_h, flip_v = (bool(b) for b in rng.integers(2, size=2))
    crop = Crop(name, Region(y0, x0, y0 + side, x0 + side), flip_h, flip_v)
    return render_crop(crop, size), crop


def render_crop(crop: Crop, size: int) -> np.ndarray:
    """Rebuild the background of ``crop`` at ``size``x``size`` (pure function of its arguments)."""
    r = crop.region
    patch = load_texture(crop.texture)[r.y0 : r.y1, r.x0 : r.x1].astype(np.float32)
    side = patch.shape[0]
    k = max(1, side // size)
    if k > 1:  # box-average by an integer factor first: cheap anti-aliasing before the final resample
        m = (side // k) * k
        patch = patch[:m, :m].reshape(m // k, k, m // k, k, 3).mean(axis=(1, 3))
    if patch.shape[0] != size:
        patch = resize(patch, (size, size), order=1, mode="edge", anti_aliasing=False, preserve_range=True)
    out = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
    if crop.flip_h:
        out = out[:, ::-1]
    if crop.flip_v:
        out = out[::-1]
    return np.ascontiguousarray(out)
