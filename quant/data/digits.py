"""The offline ``digits`` detection dataset: real handwritten digits pasted onto real photographs.

Source material is what installed packages ship: the 1797 8x8 scans of scikit-learn's ``load_digits``
(ink 0..16, ten classes) and the photographs in ``skimage.data`` (see ``textures``). Nothing is
downloaded, so the dataset exists wherever the Python environment does.

Item ``i`` of a split is drawn from ``numpy.random.default_rng([seed, split, i, size])`` and from
nothing else, so any subset can be generated in any order (or in DataLoader workers) with
byte-identical results.

Splits keep val unseen in two ways:
- digit samples: val uses the last ``VAL_DIGITS`` rows of ``load_digits`` (33-37 per class), train the
  rest, so no scan appears in both;
- backgrounds: val crops come only from each texture's val region (``textures.texture_region``).

Rendering: the digit is cropped to its ink, resampled so its box's longer side is 12-48 px at 128²
(proportional at other sizes), and its ink intensity becomes an alpha mask for one solid colour chosen
to contrast with *every* background pixel under the ink. Ink below alpha 0.25 is cut to exactly 0, so
each box (the alpha mask's bounding box) is exact: every ink pixel visibly changes the background, and
nothing outside the box does. Digits never share or touch ink and their boxes have IoU <= 0.1.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from skimage.transform import resize
from sklearn.datasets import load_digits

from .textures import SPLITS, Crop, check_split, random_crop

NUM_CLASSES = 10
CLASS_NAMES: tuple[str, ...] = tuple(str(d) for d in range(NUM_CLASSES))
NUM_DIGIT_SAMPLES = 1797
VAL_DIGITS = 360  # the last 20 % of load_digits rows
_SPLIT_CODE = {"train": 0, "val": 1}
_VIEW_CLASSIFICATION = 1  # extra rng key so the classification view never repeats detection items

# Alpha from bicubically resampled ink v in [0, 1]: a ramp from 0.3 to 0.7 (crisper strokes than the
# raw blur), and alpha under ALPHA_MIN is cut to 0 so every kept ink pixel changes the background visibly.
_RAMP_LO, _RAMP_HI = 0.3, 0.7
ALPHA_MIN = 0.25
# Every ink pixel's background differs from the ink colour by at least this much in some channel.
MIN_CONTRAST = 72
_PLACE_TRIES = 60
_IMAGE_TRIES = 200
# Always-offered ink colours: black, white, grey and the six primaries / secondaries.
_BASE_COLORS = np.array(
    [
        [0, 0, 0],
        [255, 255, 255],
        [128, 128, 128],
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [255, 255, 0],
        [255, 0, 255],
        [0, 255, 255],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class DigitsConfig:
    """Generator settings; ``size`` is the square image side, digit box sides scale with it."""

    size: int = 128
    seed: int = 0
    min_digits: int = 2
    max_digits: int = 6
    max_iou: float = 0.1
    train_len: int = 20000
    val_len: int = 1000

    def __post_init__(self) -> None:
        if self.size < 32:
            raise ValueError(f"size must be >= 32, got {self.size}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"need 1 <= min_digits <= max_digits, got {self.min_digits}, {self.max_digits}")

    @property
    def side_range(self) -> tuple[int, int]:
        """Inclusive range of a box's longer side: 12..48 px at 128², proportional otherwise."""
        return max(3, round(12 * self.size / 128)), round(48 * self.size / 128)

    def length(self, split: str) -> int:
        check_split(split)
        return self.train_len if split == "train" else self.val_len


@dataclass(frozen=True, eq=False)
class Placement:
    """One pasted digit: its alpha mask is trimmed to the ink, so ``box`` is the mask's extent."""

    digit_index: int  # row of sklearn's load_digits
    label: int
    x: int
    y: int
    alpha: np.ndarray  # float32 [h, w], 0 outside the ink, >= ALPHA_MIN on it
    color: tuple[int, int, int]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive (so width = x1 - x0 ink columns)."""
        h, w = self.alpha.shape
        return self.x, self.y, self.x + w, self.y + h


@dataclass(frozen=True, eq=False)
class Layout:
    """Everything needed to render one item: the bare background and the digits on it."""

    background: np.ndarray  # uint8 [H, W, 3]
    crop: Crop
    placements: tuple[Placement, ...]


@dataclass(frozen=True, eq=False)
class Sample:
    """One detection item. Boxes are float32 [N, 4] xyxy pixels, labels int64 [N] (digit 0..9)."""

    image: np.ndarray  # uint8 [H, W, 3]
    boxes: np.ndarray
    labels: np.ndarray
    digit_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crop: Crop | None = None


@dataclass(frozen=True, eq=False)
class ClassSample:
    """One classification item: a single digit on a texture, ``label`` is its class."""

    image: np.ndarray  # uint8 [H, W, 3]
    label: int
    digit_index: int
    box: tuple[int, int, int, int]
    crop: Crop


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    images.setflags(write=False)
    targets = data.target.astype(np.int64)
    targets.setflags(write=False)
    if len(images) != NUM_DIGIT_SAMPLES:
        raise RuntimeError(f"load_digits returned {len(images)} samples, expected {NUM_DIGIT_SAMPLES}")
    return images, targets


def digit_labels() -> np.ndarray:
    """Class of every ``load_digits`` row (read-only int64 [1797])."""
    return _digits()[1]


def digit_split_indices(split: str) -> np.ndarray:
    """Rows of ``load_digits`` that ``split`` may paste: val is the last ``VAL_DIGITS``, train the rest."""
    check_split(split)
    cut = NUM_DIGIT_SAMPLES - VAL_DIGITS
    return np.arange(cut) if split == "train" else np.arange(cut, NUM_DIGIT_SAMPLES)


@lru_cache(maxsize=8192)
def glyph_alpha(digit_index: int, side: int) -> np.ndarray:
    """Alpha mask of one digit, resampled so its longer side is about ``side``, trimmed to its ink."""
    glyph = _digits()[0][digit_index]
    cut = _RAMP_LO + ALPHA_MIN * (_RAMP_HI - _RAMP_LO)  # the ink level that survives as alpha
    rows = np.flatnonzero((glyph >= cut).any(axis=1))
    cols = np.flatnonzero((glyph >= cut).any(axis=0))
    glyph = glyph[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = side / max(glyph.shape)
    shape = (max(1, round(glyph.shape[0] * scale)), max(1, round(glyph.shape[1] * scale)))
    up = resize(glyph, shape, order=3, mode="edge", anti_aliasing=False)
    alpha = np.clip((up - _RAMP_LO) / (_RAMP_HI - _RAMP_LO), 0.0, 1.0).astype(np.float32)
    alpha[alpha < ALPHA_MIN] = 0.0
    ink = alpha > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    alpha = np.ascontiguousarray(alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    alpha.setflags(write=False)
    return alpha


def _sized_alpha(digit_index: int, side: int, lo: int, hi: int) -> np.ndarray:
    # Trimming faint edges can shrink the box by a pixel or two: grow until it is inside [lo, hi].
    while True:
        alpha = glyph_alpha(digit_index, side)
        if max(alpha.shape) >= lo:
            break
        side += 1
    if max(alpha.shape) > hi:
        raise RuntimeError(f"digit {digit_index}: box side {max(alpha.shape)} outside [{lo}, {hi}]")
    return alpha


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two xyxy boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation (a 1 px halo), so neighbouring digits never touch."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    col = out.copy()
    out[:, 1:] |= col[:, :-1]
    out[:, :-1] |= col[:, 1:]
    return out


def _pick_color(rng: np.random.Generator, under: np.ndarray) -> tuple[int, int, int] | None:
    """A colour at Chebyshev distance >= MIN_CONTRAST from every background pixel under the ink.

    Candidates are random colours plus primaries, black, white and grey (grey separates black from
    white, e.g. on the checkerboard); one is drawn among those close to the best contrast.
    """
    cands = np.concatenate([rng.integers(0, 256, size=(16, 3)).astype(np.float32), _BASE_COLORS])
    contrast = np.abs(cands[:, None, :] - under[None].astype(np.float32)).max(axis=2).min(axis=1)
    best = float(contrast.max())
    if best < MIN_CONTRAST:
        return None
    ok = np.flatnonzero(contrast >= max(MIN_CONTRAST, 0.8 * best))
    c = cands[ok[int(rng.integers(len(ok)))]]
    return int(c[0]), int(c[1]), int(c[2])


def _claim(occupied: np.ndarray, ink: np.ndarray, x: int, y: int) -> None:
    """Mark ``ink`` plus a 1 px halo as taken, so the next digit's ink cannot touch this one."""
    h, w = ink.shape
    padded = np.zeros((h + 2, w + 2), dtype=bool)
    padded[1:-1, 1:-1] = ink
    halo = _dilate(padded)
    size_y, size_x = occupied.shape
    y0, x0 = max(0, y - 1), max(0, x - 1)
    y1, x1 = min(size_y, y + h + 1), min(size_x, x + w + 1)
    occupied[y0:y1, x0:x1] |= halo[y0 - (y - 1) : y1 - (y - 1), x0 - (x - 1) : x1 - (x - 1)]


def _layout(
    rng: np.random.Generator,
    split: str,
    size: int,
    n_range: tuple[int, int],
    side_range: tuple[int, int],
    max_iou: float,
) -> Layout:
    """Draw a background and place digits on it, retrying until all of them fit the rules."""
    pool = digit_split_indices(split)
    labels = digit_labels()
    lo, hi = side_range
    for _ in range(_IMAGE_TRIES):
        background, crop = random_crop(rng, split, size)
        n = int(rng.integers(n_range[0], n_range[1] + 1))
        occupied = np.zeros((size, size), dtype=bool)
        placements: list[Placement] = []
        for _ in range(n):
            for _ in range(_PLACE_TRIES):
                idx = int(pool[int(rng.integers(len(pool)))])
                alpha = _sized_alpha(idx, int(rng.integers(lo, hi + 1)), lo, hi)
                h, w = alpha.shape
                y, x = int(rng.integers(size - h + 1)), int(rng.integers(size - w + 1))
                box = (x, y, x + w, y + h)
                if any(box_iou(box, p.box) > max_iou for p in placements):
                    continue
                ink = alpha > 0
                if (occupied[y : y + h, x : x + w] & ink).any():
                    continue
                color = _pick_color(rng, background[y : y + h, x : x + w][ink])
                if color is None:
                    continue
                placements.append(Placement(idx, int(labels[idx]), x, y, alpha, color))
                _claim(occupied, ink, x, y)
                break
            else:
                break  # no room for this digit: start over with a new background
        if len(placements) == n:
            return Layout(background, crop, tuple(placements))
    raise RuntimeError(f"could not place {n_range} digits on {_IMAGE_TRIES} backgrounds of {size}²")


def render(layout: Layout, only: Sequence[int] | None = None) -> np.ndarray:
    """Paste the layout's digits (or just those numbered in ``only``) onto its background.

    Digits never share ink, so pasting order does not matter and one digit can be re-rendered alone.
    """
    out = layout.background.astype(np.float32)
    for k in range(len(layout.placements)) if only is None else only:
        p = layout.placements[k]
        h, w = p.alpha.shape
        region = out[p.y : p.y + h, p.x : p.x + w]
        region += p.alpha[:, :, None] * (np.asarray(p.color, np.float32) - region)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _rng(seed: int, split: str, index: int, size: int, *view: int) -> np.random.Generator:
    check_split(split)
    if index < 0:
        raise IndexError(f"item index must be >= 0, got {index}")
    return np.random.default_rng([seed, _SPLIT_CODE[split], index, size, *view])


def _check_index(index: int, length: int) -> int:
    index = int(index)
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} items")
    return index


class DigitsDetection:
    """Detection view: ``ds[i]`` is a ``Sample`` with 2-6 digits; ``len`` is nominal (any i >= 0 works
    through ``layout`` / ``sample``)."""

    def __init__(self, split: str = "train", config: DigitsConfig | None = None, length: int | None = None):
        check_split(split)
        self.split = split
        self.config = config or DigitsConfig()
        self.length = self.config.length(split) if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        return self.sample(_check_index(index, self.length))

    def layout(self, index: int) -> Layout:
        c = self.config
        rng = _rng(c.seed, self.split, index, c.size)
        return _layout(rng, self.split, c.size, (c.min_digits, c.max_digits), c.side_range, c.max_iou)

    def sample(self, index: int) -> Sample:
        layout = self.layout(index)
        ps = layout.placements
        return Sample(
            image=render(layout),
            boxes=np.array([p.box for p in ps], dtype=np.float32).reshape(-1, 4),
            labels=np.array([p.label for p in ps], dtype=np.int64),
            digit_indices=np.array([p.digit_index for p in ps], dtype=np.int64),
            crop=layout.crop,
        )


class DigitsClassification:
    """Classification view for backbone pretraining: one digit per image, its box's longer side
    40-80 % of ``size``; ``ds[i]`` is a ``ClassSample`` whose ``label`` is the pasted digit's class."""

    def __init__(self, split: str = "train", size: int = 64, seed: int = 0, length: int | None = None):
        check_split(split)
        if size < 16:
            raise ValueError(f"size must be >= 16, got {size}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.split, self.size, self.seed = split, size, seed
        self.length = (20000 if split == "train" else 2000) if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> ClassSample:
        return self.sample(_check_index(index, self.length))

    def layout(self, index: int) -> Layout:
        rng = _rng(self.seed, self.split, index, self.size, _VIEW_CLASSIFICATION)
        sides = (round(0.4 * self.size), round(0.8 * self.size))
        return _layout(rng, self.split, self.size, (1, 1), sides, 0.0)

    def sample(self, index: int) -> ClassSample:
        layout = self.layout(index)
        (p,) = layout.placements
        return ClassSample(render(layout), p.label, p.digit_index, p.box, layout.crop)


def calibration_images(size: int, n: int, seed: int) -> np.ndarray:
    """``n`` val-split detection images as uint8 NCHW, to calibrate activation scales at export."""
    ds = DigitsDetection("val", DigitsConfig(size=size, seed=seed), length=n)
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for i in range(n):
        out[i] = ds.sample(i).image.transpose(2, 0, 1)
    return out


def write_digits_coco(
    out_dir: str | Path,
    split: str = "val",
    n: int = 1000,
    size: int = 128,
    seed: int = 0,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write items 0..n-1 of a split as a COCO folder (``images/*.png`` + ``instances.json``)."""
    from .coco import write_coco  # PIL stays out of the generator's imports

    ds = DigitsDetection(split, DigitsConfig(size=size, seed=seed), length=n)
    return write_coco(
        out_dir,
        (ds.sample(i) for i in range(n)),
        CLASS_NAMES,
        total=n,
        overwrite=overwrite,
        progress=progress,
        description=f"digits {split} {size}² seed {seed}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m quant.data.digits", description=write_digits_coco.__doc__
    )
    parser.add_argument("--out", required=True, type=Path, help="target folder (must not exist)")
    parser.add_argument("--split", default="val", choices=SPLITS)
    parser.add_argument("--n", type=int, default=1000, help="number of images")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target folder")
    args = parser.parse_args(argv)
    try:
        out = write_digits_coco(args.out, args.split, args.n, args.size, args.seed, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as e:
        parser.exit(2, f"error: {e}\n")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
