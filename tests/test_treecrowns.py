"""quant.data.treecrowns on small fixtures: exact boxes, spatially disjoint regions, determinism.

The fixtures are two synthetic "crops" written here (PNG + Pascal VOC, the layout of deepforest's
data folder), with boxes placed at known positions: inside a training tile, across two validation
tiles, in the guard band, and mostly outside the training region. The expected boxes below are
worked out by hand from those positions, not from the module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quant.data.coco import load_coco
from quant.data.treecrowns import (
    GUARD,
    Tile,
    TreeCrownError,
    build,
    dihedral,
    read_voc,
    split_columns,
    tile_boxes,
    tiles,
)

ROOT = Path(__file__).resolve().parents[1]
TILE = 64
W, H = 600, 150  # val: round(0.25 * 600 / 64) = 2 tiles -> columns 472-600; guard 344-472; train 0-344

BOXES = {
    "inside": (
        10,
        10,
        30,
        30,
    ),  # train tiles with origin x=0, y=0 (and no other: y=32 leaves 0 px... see test)
    "val_split": (500, 40, 520, 80),  # rows 0-64 and 64-128: 24 of 40 px (60%) in the first val row
    "guard": (350, 20, 380, 50),  # in the guard band: in no tile
    "edge": (330, 100, 360, 120),  # 14 of 30 px (47%) inside the training region: dropped
}


def _voc(boxes: dict[str, tuple[int, ...]]) -> str:
    objs = "".join(
        f"<object><name>Tree</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>"
        for b in boxes.values()
    )
    return f"<annotation><size><width>{W}</width><height>{H}</height></size>{objs}</annotation>"


@pytest.fixture
def crops(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    d.mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(d / f"{name}.png")
        (d / f"{name}.xml").write_text(_voc(BOXES))
    return d


def test_split_is_disjoint_with_a_guard_band_wider_than_the_trees():
    sp = split_columns(W, TILE)
    assert sp.train == (0, 344) and sp.val == (472, 600)
    assert sp.val[0] - sp.train[1] == GUARD > 108  # the largest box in deepforest's YELL crops


def test_tile_boxes_are_exact(crops):
    boxes = read_voc(crops / "a.xml")
    assert boxes.tolist() == [list(map(float, b)) for b in BOXES.values()]
    # the val box split by the row boundary at y = 64: 24 of 40 px above (kept there), 16 below (not)
    assert tile_boxes(boxes, 472, 0, TILE).tolist() == [[28.0, 40.0, 48.0, 64.0]]
    assert tile_boxes(boxes, 472, 64, TILE).tolist() == []
    # the box 47% inside the training region: its training tile (origin 280, 86) drops it
    assert tile_boxes(boxes, 280, 86, TILE).tolist() == []
    assert tile_boxes(boxes, 0, 0, TILE).tolist() == [[10.0, 10.0, 30.0, 30.0]]


def test_tiles_stay_in_their_region_and_val_boxes_are_counted_once(crops):
    image = np.asarray(Image.open(crops / "a.png"))
    boxes = read_voc(crops / "a.xml")
    sp = split_columns(W, TILE)
    train = list(tiles(image, boxes, sp.train, TILE, TILE // 2, "a"))
    val = list(tiles(image, boxes, sp.val, TILE, TILE, "a"))
    assert {t.origin[0] for t in train} == {0, 32, 64, 96, 128, 160, 192, 224, 256, 280}
    assert {t.origin[1] for t in train} == {0, 32, 64, 86}  # the last row flush with the bottom
    assert all(t.origin[0] + TILE <= sp.train[1] for t in train)
    assert {t.origin for t in val} == {(472, 0), (536, 0), (472, 64), (536, 64)}  # no overlap
    assert sum(len(t.boxes) for t in val) == 1  # the split box, once; the guard box nowhere
    assert all(len(t.boxes) == 0 or t.origin[0] < 40 for t in train)  # only the inside box trains
    np.testing.assert_array_equal(val[0].image, image[0:64, 472:536])


def test_build_writes_two_coco_folders_byte_identically(crops, tmp_path):
    out, val = build(
        tmp_path / "tc", TILE, root=crops, sources=("a", "b"), log=lambda *a: None, augment=False
    )
    assert val == tmp_path / "tc-val"
    train_set, val_set = load_coco(out), load_coco(val)
    assert len(val_set) == 8 and len(train_set) == 2 * 10 * 4
    assert sum(len(val_set[i].boxes) for i in range(len(val_set))) == 2

    def files() -> dict:
        return {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("tc*/**/*") if p.is_file()}

    first = files()
    build(tmp_path / "tc", TILE, root=crops, sources=("a", "b"), log=lambda *a: None, augment=False)
    assert files() == first and len(first) == 80 + 8 + 2
    build(tmp_path / "tc", TILE, root=crops, sources=("a", "b"), log=lambda *a: None)  # augmented
    assert (
        len(load_coco(out)) == 8 * 80
        and files()[Path("tc-val/instances.json")] == first[Path("tc-val/instances.json")]
    )


def test_missing_data_is_one_line_and_exit_2(tmp_path):
    with pytest.raises(TreeCrownError, match="is missing"):
        build(tmp_path / "tc", TILE, root=tmp_path, log=lambda *a: None)
    r = subprocess.run(
        [sys.executable, "-m", "quant.data.treecrowns", str(tmp_path / "tc")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DEEPFOREST_DATA": str(tmp_path / "nothing"), "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "is missing" in r.stderr
    assert not (tmp_path / "tc").exists()


def test_augmentation_moves_the_boxes_with_the_pixels():
    """A marked rectangle in a 16 px tile: in every orientation the box must frame the marked
    pixels exactly (found from the image, not from the transform)."""
    img = np.zeros((16, 16, 3), np.uint8)
    img[2:5, 9:15] = 255  # rows 2-4, columns 9-14: the box (9, 2, 15, 5)
    t = Tile(img, np.array([[9, 2, 15, 5]], np.float32), np.zeros(1, np.int64), "a", (0, 0))
    seen = set()
    for d in dihedral(t):
        ys, xs = np.nonzero(d.image[..., 0])
        assert d.boxes.tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]
        seen.add(d.image.tobytes())
    assert len(seen) == 8
