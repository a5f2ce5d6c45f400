"""Aerial tree crowns, offline: the two large annotated YELL crops inside the PyPI package ``deepforest``.

``deepforest`` 2.1.0 (pinned; ``make setup`` installs it with ``--no-deps``, data only: nothing of it
is imported) ships ``2019_YELL_2_528000_4978000_image_crop2`` (2299 x 2472 px, 574 boxes) and
``2019_YELL_2_541000_4977000_image_crop`` (1249 x 1035 px, 279 boxes), RGB PNGs with Pascal VOC
boxes of one class, ``Tree``. ``python -m quant.data.treecrowns OUT`` cuts them into a COCO folder
``OUT`` (training) and ``OUT-val`` (validation, the sibling ``hwcsp train --data OUT`` scores on).

The split is spatial, because a split by source image leaves too few validation boxes and tiles of
one image are not independent: in each crop the rightmost strip (a whole number of tiles, about
``VAL_FRACTION`` of the width) is validation, a guard band of ``GUARD`` px to its left belongs to
neither set, and the rest is training. The guard band is wider than the largest box (108 px), so no
tree lies in both sets. Training tiles overlap (stride half a tile); validation tiles do not (each
box is scored once; the bottom rows that do not fill a whole tile are left out). A box belongs to a
tile when at least ``MIN_VISIBLE`` of its area lies inside it, clipped to the tile. Each training
tile is written in its 8 orientations (flips, transposes; ``--no-augment``: as cut). The output is
deterministic (same files, same bytes). The folder can be moved with ``$DEEPFOREST_DATA``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hwcsp.errors import UserError

VERSION = "2.1.0"
SOURCES = ("2019_YELL_2_528000_4978000_image_crop2", "2019_YELL_2_541000_4977000_image_crop")
CLASS_NAMES = ("tree",)
VAL_FRACTION = 0.25
GUARD = 128  # px between the training and the validation region: wider than any box
MIN_VISIBLE = 0.5


class TreeCrownError(UserError, FileNotFoundError):
    pass


def data_dir() -> Path:
    """``$DEEPFOREST_DATA``, else the ``data`` folder of the installed package (found, not imported)."""
    if os.environ.get("DEEPFOREST_DATA"):
        return Path(os.environ["DEEPFOREST_DATA"])
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise TreeCrownError(
            f"the PyPI package deepforest is not installed: make setup installs it (data only: pip "
            f"install --no-deps deepforest=={VERSION}), or point $DEEPFOREST_DATA at its data folder"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_voc(path: Path) -> np.ndarray:
    """Boxes [N, 4] xyxy pixels (float32) of a Pascal VOC file; every object must be a tree."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise TreeCrownError(f"{path}: not a readable Pascal VOC file ({e})") from e
    boxes = []
    for k, obj in enumerate(root.findall("object")):
        name, bb = obj.findtext("name"), obj.find("bndbox")
        if name != "Tree" or bb is None:
            raise TreeCrownError(f"{path}: object {k} is {name!r} without a box; expected Tree boxes")
        boxes.append([float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")])
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


@dataclass(frozen=True)
class Split:
    """Column ranges [x0, x1) of one crop: training, then (after the guard band) validation."""

    train: tuple[int, int]
    val: tuple[int, int]


def split_columns(width: int, tile: int, val_fraction: float = VAL_FRACTION, guard: int = GUARD) -> Split:
    n_val = max(1, round(val_fraction * width / tile))
    v0 = width - n_val * tile
    t1 = v0 - guard
    if t1 < tile:
        raise TreeCrownError(
            f"a {width} px wide crop holds no training tile of {tile} px beside its val strip"
        )
    return Split((0, t1), (v0, width))


def _starts(lo: int, hi: int, tile: int, stride: int) -> list[int]:
    """Tile origins in [lo, hi) at ``stride``; with overlap, the last tile flush with ``hi``."""
    s = list(range(lo, hi - tile + 1, stride))
    if stride < tile and s[-1] + tile < hi:
        s.append(hi - tile)
    return s


@dataclass(frozen=True, eq=False)
class Tile:
    image: np.ndarray  # uint8 [tile, tile, 3]
    boxes: np.ndarray  # [N, 4] xyxy px in the tile
    labels: np.ndarray
    source: str
    origin: tuple[int, int]  # (x, y) in the crop


def tile_boxes(boxes: np.ndarray, x: int, y: int, tile: int, min_visible: float = MIN_VISIBLE) -> np.ndarray:
    """The boxes with at least ``min_visible`` of their area inside the tile at (x, y), clipped to it."""
    clip = np.clip(boxes, [x, y, x, y], [x + tile, y + tile, x + tile, y + tile])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = (clip[:, 2] - clip[:, 0]) * (clip[:, 3] - clip[:, 1])
    keep = inside >= min_visible * area
    return (clip[keep] - np.array([x, y, x, y], dtype=np.float32)).astype(np.float32)


def tiles(image: np.ndarray, boxes: np.ndarray, cols: tuple[int, int], tile: int, stride: int, source: str):
    h = image.shape[0]
    for y in _starts(0, h, tile, stride):
        for x in _starts(cols[0], cols[1], tile, stride):
            b = tile_boxes(boxes, x, y, tile)
            yield Tile(image[y : y + tile, x : x + tile], b, np.zeros(len(b), np.int64), source, (x, y))


def dihedral(t: Tile) -> list[Tile]:
    """The tile in its 8 orientations (flips and transposes; boxes transformed exactly): a tree
    seen from above has no up or left, and 276 training tiles are few."""
    size = t.image.shape[0]
    out = []
    for transpose in (False, True):
        for hflip in (False, True):
            for vflip in (False, True):
                img, b = t.image, t.boxes.copy()
                if transpose:
                    img, b = img.transpose(1, 0, 2), b[:, [1, 0, 3, 2]]
                if hflip:
                    img, b = img[:, ::-1], np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], 1)
                if vflip:
                    img, b = img[::-1], np.stack([b[:, 0], size - b[:, 3], b[:, 2], size - b[:, 1]], 1)
                b = b.reshape(-1, 4).astype(np.float32)
                out.append(Tile(np.ascontiguousarray(img), b, t.labels, t.source, t.origin))
    return out


def load_crop(root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    png, xml = root / f"{name}.png", root / f"{name}.xml"
    for f in (png, xml):
        if not f.is_file():
            raise TreeCrownError(f"{f} is missing (deepforest {VERSION}'s data folder expected at {root})")
    return np.asarray(Image.open(png).convert("RGB")), read_voc(xml)


def build(
    out: Path, tile: int = 256, root: Path | None = None, sources=SOURCES, log=print, augment: bool = True
) -> tuple[Path, Path]:
    """Write the training folder ``out`` and the validation folder ``out-val`` (COCO, atomically);
    with ``augment`` every training tile in its 8 orientations (``dihedral``)."""
    from quant.data.coco import write_coco

    root = data_dir() if root is None else Path(root)
    train, val = [], []
    for name in sources:
        image, boxes = load_crop(root, name)
        sp = split_columns(image.shape[1], tile)
        if ((boxes[:, 0] < sp.train[1]) & (boxes[:, 2] > sp.val[0])).any():
            raise TreeCrownError(f"{name}: a box spans the {GUARD} px guard band (wider than any tree)")
        t = list(tiles(image, boxes, sp.train, tile, tile // 2, name))
        v = list(tiles(image, boxes, sp.val, tile, tile, name))
        log(
            f"treecrowns: {name}: {image.shape[1]}x{image.shape[0]} px, {len(boxes)} boxes; train columns "
            f"{sp.train[0]}-{sp.train[1]} ({len(t)} tiles), guard {sp.train[1]}-{sp.val[0]}, val "
            f"{sp.val[0]}-{sp.val[1]} ({len(v)} tiles, {sum(len(x.boxes) for x in v)} boxes)"
        )
        train += [d for x in t for d in dihedral(x)] if augment else t
        val += v
    val_dir = out.parent / f"{out.name}-val"
    write_coco(out, train, CLASS_NAMES, overwrite=True)
    write_coco(val_dir, val, CLASS_NAMES, overwrite=True)
    log(
        f"treecrowns: wrote {out} ({len(train)} tiles, {sum(len(x.boxes) for x in train)} boxes) and "
        f"{val_dir} ({len(val)} tiles, {sum(len(x.boxes) for x in val)} boxes)"
    )
    return out, val_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m quant.data.treecrowns", description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="training COCO folder to write (validation: OUT-val)")
    p.add_argument("--tile", type=int, default=256, help="tile size in px (default 256)")
    p.add_argument(
        "--no-augment", action="store_true", help="training tiles as cut (default: in 8 orientations)"
    )
    args = p.parse_args(argv)
    try:
        build(args.out, args.tile, augment=not args.no_augment)
    except UserError as e:
        print(f"treecrowns: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
