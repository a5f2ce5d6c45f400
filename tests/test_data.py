"""The offline ``digits`` dataset, the COCO writer/loader and the torch wrappers (quant.data)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from skimage.transform import resize
from sklearn.datasets import load_digits

from quant.data import coco as coco_mod
from quant.data.coco import DatasetError, load_coco, write_coco
from quant.data.digits import (
    ClassSample,
    DigitsClassification,
    DigitsConfig,
    DigitsDetection,
    box_iou,
    calibration_images,
    digit_split_indices,
    main,
    render,
    write_digits_coco,
)
from quant.data.textures import TEXTURE_NAMES, render_crop, texture_region

REPO = Path(__file__).resolve().parents[1]
SKLEARN = load_digits()


@pytest.fixture(scope="module")
def val_layouts():
    ds = DigitsDetection("val")
    return [ds.layout(i) for i in range(40)]


@pytest.fixture(scope="module")
def train_layouts():
    ds = DigitsDetection("train")
    return [ds.layout(i) for i in range(40)]


# --- a recogniser that knows nothing about the generator: 1-NN against the *train* scans -----------


def _normalise(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(float)
    return resize(crop, (16, 16), order=1, anti_aliasing=True).ravel()


@pytest.fixture(scope="module")
def recognise():
    ref = digit_split_indices("train")
    templates = np.stack([_normalise(SKLEARN.images[i] / 16 >= 0.4) for i in ref])
    classes = SKLEARN.target[ref]
    return lambda mask: int(classes[np.argmin(((templates - _normalise(mask)) ** 2).sum(axis=1))])


# --- determinism ------------------------------------------------------------------------------------


def test_same_seed_is_byte_identical_and_other_seeds_differ():
    a = DigitsDetection("val", DigitsConfig(seed=3))
    b = DigitsDetection("val", DigitsConfig(seed=3))
    c = DigitsDetection("val", DigitsConfig(seed=4))
    for i in range(4):
        sa, sb, sc = a[i], b[i], c[i]
        assert sa.image.dtype == np.uint8 and sa.image.shape == (128, 128, 3)
        assert sa.image.tobytes() == sb.image.tobytes()
        assert sa.boxes.tobytes() == sb.boxes.tobytes() and sa.labels.tobytes() == sb.labels.tobytes()
        assert sa.image.tobytes() != sc.image.tobytes()
    assert DigitsDetection("train", DigitsConfig(seed=3))[0].image.tobytes() != a[0].image.tobytes()


def test_any_order_equals_sequential():
    seq = DigitsDetection("train", DigitsConfig(seed=1))
    expected = {i: seq[i] for i in range(6)}
    other = DigitsDetection("train", DigitsConfig(seed=1))
    for i in (5, 2, 4, 0, 3, 1, 2):
        s = other[i]
        assert s.image.tobytes() == expected[i].image.tobytes()
        np.testing.assert_array_equal(s.boxes, expected[i].boxes)
        np.testing.assert_array_equal(s.labels, expected[i].labels)


def test_dataloader_workers_reproduce_direct_generation():
    from torch.utils.data import DataLoader

    from quant.data.torch_dataset import DetectionDataset, collate

    ds = DigitsDetection("val", DigitsConfig(size=64, seed=2), length=8)
    loader = DataLoader(DetectionDataset(ds), batch_size=4, num_workers=2, collate_fn=collate)
    got = [(img, t) for images, targets in loader for img, t in zip(images, targets, strict=True)]
    assert len(got) == 8
    for i, (img, target) in enumerate(got):
        direct = ds[i]
        assert np.array_equal((img * 256).round().byte().permute(1, 2, 0).numpy(), direct.image)
        np.testing.assert_array_equal(target["boxes"].numpy(), direct.boxes)


# --- boxes, sizes, counts ---------------------------------------------------------------------------


def test_sample_is_the_rendered_layout_on_the_recorded_crop():
    ds = DigitsDetection("val")
    for i in range(3):
        layout, sample = ds.layout(i), ds[i]
        assert np.array_equal(layout.background, render_crop(layout.crop, 128))
        assert np.array_equal(sample.image, render(layout))
        np.testing.assert_array_equal(sample.boxes, np.array([p.box for p in layout.placements], np.float32))


def test_each_box_is_exactly_the_extent_of_its_pasted_digit(val_layouts, train_layouts):
    for layout in val_layouts[:20] + train_layouts[:20]:
        bare = layout.background
        for k, p in enumerate(layout.placements):
            x0, y0, x1, y1 = p.box
            delta = np.abs(render(layout, only=[k]).astype(int) - bare).max(axis=2)
            changed = delta > 0
            inside = changed[y0:y1, x0:x1]
            assert inside.sum() >= 0.15 * inside.size  # the digit is there ...
            assert delta[changed].min() >= 16 and np.median(delta[changed]) >= 60  # ... and clearly visible
            assert delta[y0:y1, x0:x1][p.alpha == 1].min() >= 64  # solid ink contrasts with every pixel
            # tight: ink on all four edges of the box ...
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            # ... and nothing changed outside it
            outside = changed.copy()
            outside[y0:y1, x0:x1] = False
            assert not outside.any()


def test_full_image_changes_only_inside_boxes():
    ds = DigitsDetection("val")
    for i in range(20):
        s = ds[i]
        changed = (s.image != render_crop(s.crop, 128)).any(axis=2)
        in_boxes = np.zeros_like(changed)
        for x0, y0, x1, y1 in s.boxes.astype(int):
            in_boxes[y0:y1, x0:x1] = True
            assert changed[y0:y1, x0:x1].any()
        assert not (changed & ~in_boxes).any()


def test_box_sizes_counts_and_overlap(val_layouts, train_layouts):
    counts = []
    for layout in val_layouts + train_layouts:
        boxes = [p.box for p in layout.placements]
        counts.append(len(boxes))
        for j, b in enumerate(boxes):
            assert 12 <= max(b[2] - b[0], b[3] - b[1]) <= 48
            assert 0 <= b[0] < b[2] <= 128 and 0 <= b[1] < b[3] <= 128
            assert all(box_iou(b, o) <= 0.1 for o in boxes[j + 1 :])
    assert min(counts) >= 2 and max(counts) <= 6
    assert {2, 6} <= set(counts)  # the range is actually used, not just respected


@pytest.mark.parametrize(("size", "lo", "hi"), [(64, 6, 24), (256, 24, 96)])
def test_box_sides_scale_with_image_size(size, lo, hi):
    ds = DigitsDetection("train", DigitsConfig(size=size))
    for i in range(6):
        s = ds[i]
        assert s.image.shape == (size, size, 3)
        sides = np.maximum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1])
        assert sides.min() >= lo and sides.max() <= hi


def test_detection_labels_match_the_pasted_digits(recognise):
    ds = DigitsDetection("val")
    hits = shifted = total = 0
    for i in range(12):
        s = ds[i]
        changed = (s.image != render_crop(s.crop, 128)).any(axis=2)
        np.testing.assert_array_equal(s.labels, SKLEARN.target[s.digit_indices])
        for (x0, y0, x1, y1), label in zip(s.boxes.astype(int), s.labels, strict=True):
            guess = recognise(changed[y0:y1, x0:x1])
            hits += guess == label
            shifted += guess == (label + 1) % 10
            total += 1
    assert hits / total >= 0.7 and shifted / total <= 0.3


# --- splits ---------------------------------------------------------------------------------------


def test_digit_samples_are_split_disjointly(val_layouts, train_layouts):
    train, val = set(digit_split_indices("train")), set(digit_split_indices("val"))
    assert not train & val and len(train | val) == 1797
    assert set(SKLEARN.target[sorted(val)]) == set(range(10))
    used_val = {p.digit_index for lay in val_layouts for p in lay.placements}
    used_train = {p.digit_index for lay in train_layouts for p in lay.placements}
    assert used_val <= val and used_train <= train
    first = DigitsDetection("val")[0].digit_indices.tolist()
    assert first == [p.digit_index for p in val_layouts[0].placements]


def test_val_texture_crops_never_touch_train_crops(val_layouts, train_layouts):
    for name in TEXTURE_NAMES:
        assert not texture_region(name, "train").intersects(texture_region(name, "val"))
    for layout in val_layouts:
        assert texture_region(layout.crop.texture, "val").contains(layout.crop.region)
    for layout in train_layouts:
        assert texture_region(layout.crop.texture, "train").contains(layout.crop.region)
    for v in val_layouts:
        for t in train_layouts:
            if v.crop.texture == t.crop.texture:
                assert not v.crop.region.intersects(t.crop.region)


def test_val_has_at_least_1000_images():
    ds = DigitsDetection("val")
    assert len(ds) >= 1000
    assert len(ds[999].labels) >= 2
    with pytest.raises(IndexError):
        ds[len(ds)]


# --- classification view ------------------------------------------------------------------------


def test_classification_labels_match_the_pasted_digit(recognise):
    ds = DigitsClassification("val", size=64)
    hits = shifted = 0
    n = 30
    for i in range(n):
        s = ds[i]
        assert isinstance(s, ClassSample) and s.image.shape == (64, 64, 3)
        assert s.label == SKLEARN.target[s.digit_index] and s.digit_index in set(digit_split_indices("val"))
        changed = (s.image != render_crop(s.crop, 64)).any(axis=2)
        x0, y0, x1, y1 = s.box
        assert changed[y0:y1, x0:x1].any() and not changed.sum() > changed[y0:y1, x0:x1].sum()
        guess = recognise(changed[y0:y1, x0:x1])
        hits += guess == s.label
        shifted += guess == (s.label + 1) % 10
    assert hits / n >= 0.7 and shifted / n <= 0.3
    assert ds[3].image.tobytes() == DigitsClassification("val", size=64)[3].image.tobytes()


# --- COCO writer and loader ---------------------------------------------------------------------


def test_coco_round_trip(tmp_path):
    ds = DigitsDetection("val", DigitsConfig(size=64, seed=5), length=6)
    out = write_digits_coco(tmp_path / "digits", "val", 6, 64, 5, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]
    loaded = load_coco(out)
    assert len(loaded) == 6 and loaded.class_names == [str(d) for d in range(10)]
    for i in range(6):
        got, want = loaded[i], ds[i]
        assert np.array_equal(got.image, want.image)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.labels, want.labels)

    coco = COCO(str(out / "instances.json"))
    assert sorted(coco.getCatIds()) == list(range(1, 11))
    assert [c["name"] for c in coco.loadCats(list(range(1, 11)))] == [str(d) for d in range(10)]
    assert len(coco.getImgIds()) == 6 and len(coco.getAnnIds()) == sum(len(ds[i].labels) for i in range(6))
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    x0, y0, x1, y1 = ds[0].boxes[0]
    assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0] and ann["area"] == (x1 - x0) * (y1 - y0)
    assert ann["iscrowd"] == 0 and ann["category_id"] == ds[0].labels[0] + 1


def test_cli_main_writes_a_loadable_folder(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "cli"), "--split", "train", "--n", "3", "--size", "64"]) == 0
    assert len(load_coco(tmp_path / "cli")) == 3
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "cli"), "--n", "1"])
    assert e.value.code == 2 and "already exists" in capsys.readouterr().err


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real = coco_mod.write_png
    calls = []

    def flaky(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real(path, image)

    monkeypatch.setattr(coco_mod, "write_png", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_digits_coco(tmp_path / "out", "val", 5, 32, 0, progress=False)
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []


def test_existing_target_is_kept_unless_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "marker").write_text("old")
    ds = DigitsDetection("val", DigitsConfig(size=32), length=2)
    with pytest.raises(FileExistsError):
        write_coco(target, (ds[i] for i in range(2)), [str(d) for d in range(10)])
    assert (target / "marker").read_text() == "old"
    write_coco(target, (ds[i] for i in range(2)), [str(d) for d in range(10)], overwrite=True)
    assert not (target / "marker").exists() and len(load_coco(target)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.fixture
def user_coco(tmp_path):
    """A hand-written two-image COCO folder with non-contiguous category ids."""
    root = tmp_path / "user"
    (root / "images").mkdir(parents=True)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(root / "images" / name)
    doc = {
        "images": [
            {"id": 10, "file_name": "a.png", "width": 30, "height": 20},
            {"id": 11, "file_name": "b.jpg", "width": 30, "height": 20},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 3, 10, 5], "area": 50, "iscrowd": 0},
            {"id": 2, "image_id": 11, "category_id": 3, "bbox": [-0.5, 0, 30.5, 20], "area": 1, "iscrowd": 0},
        ],
        "categories": [{"id": 7, "name": "seven"}, {"id": 3, "name": "three"}],
    }
    (root / "instances.json").write_text(json.dumps(doc))
    return root, doc


def _rewrite(root: Path, doc: dict) -> None:
    (root / "instances.json").write_text(json.dumps(doc))


def test_loader_reads_user_folder(user_coco):
    root, _ = user_coco
    ds = load_coco(root)
    assert ds.class_names == ["three", "seven"]  # sorted by category id -> labels 0, 1
    a, b = ds[0], ds[1]
    assert a.image.shape == (20, 30, 3) and a.image_id == 10
    np.testing.assert_array_equal(a.boxes, [[2, 3, 12, 8]])
    np.testing.assert_array_equal(a.labels, [1])
    np.testing.assert_array_equal(b.boxes, [[0, 0, 30, 20]])  # within the 1 px tolerance, clipped
    np.testing.assert_array_equal(b.labels, [0])


def test_loader_missing_folder_and_json(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found") as e:
        load_coco(tmp_path / "nope")
    assert "nope" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"annotation file not found: .*instances\.json"):
        load_coco(tmp_path / "empty")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level is list"),
        ('{"images": [], "categories": []}', "missing list 'annotations'"),
        ('{"images": [{"id": 1}], "annotations": [], "categories": []}', "images entry id 1 has no 'file_n"),
    ],
)
def test_loader_rejects_json_that_is_not_coco(user_coco, text, problem):
    root, _ = user_coco
    (root / "instances.json").write_text(text)
    with pytest.raises(DatasetError, match=problem) as e:
        load_coco(root)
    assert "instances.json" in str(e.value)


def test_loader_rejects_unknown_category(user_coco):
    root, doc = user_coco
    doc["annotations"][1]["category_id"] = 42
    _rewrite(root, doc)
    with pytest.raises(DatasetError, match="annotation id 2 has unknown category id 42"):
        load_coco(root)


@pytest.mark.parametrize("bbox", [[25, 3, 7, 5], [-2, 0, 5, 5], [0, 10, 5, 11.5]])
def test_loader_rejects_boxes_outside_the_image(user_coco, bbox):
    root, doc = user_coco
    doc["annotations"][0]["bbox"] = bbox
    _rewrite(root, doc)
    with pytest.raises(DatasetError, match=r"annotation id 1 box .* lies outside image a\.png \(30x20\)"):
        load_coco(root)


def test_loader_rejects_missing_image_files(user_coco):
    root, _ = user_coco
    (root / "images" / "b.jpg").unlink()
    with pytest.raises(DatasetError, match=r"image file missing: .*b\.jpg"):
        load_coco(root)


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


# --- torch side -----------------------------------------------------------------------------------


def test_torch_dataset_is_pixel_over_256_exactly():
    import torch

    from quant.data.torch_dataset import ClassificationDataset, DetectionDataset, collate

    det = DigitsDetection("val", DigitsConfig(size=64), length=3)
    tds = DetectionDataset(det)
    image, target = tds[0]
    raw = det[0].image
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, 64, 64)
    expected = torch.from_numpy(raw.transpose(2, 0, 1).astype(np.float32) / 256.0)
    assert torch.equal(image, expected)
    assert torch.equal(image * 256, torch.from_numpy(raw.transpose(2, 0, 1).astype(np.float32)))
    assert image.max() < 1.0
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (len(det[0].labels), 4)
    assert target["labels"].dtype == torch.int64
    assert torch.equal(target["boxes"], torch.from_numpy(det[0].boxes))

    images, targets = collate([tds[0], tds[1], tds[2]])
    assert tuple(images.shape) == (3, 3, 64, 64) and len(targets) == 3
    assert torch.equal(images[1], tds[1][0])

    cls = ClassificationDataset(DigitsClassification("train", size=32, length=2))
    img, label = cls[1]
    assert tuple(img.shape) == (3, 32, 32) and label.dtype == torch.int64
    assert int(label) == DigitsClassification("train", size=32)[1].label


def test_calibration_images_are_val_images_nchw():
    a = calibration_images(64, 3, 7)
    assert a.dtype == np.uint8 and a.shape == (3, 3, 64, 64)
    ds = DigitsDetection("val", DigitsConfig(size=64, seed=7))
    assert np.array_equal(a[2], ds[2].image.transpose(2, 0, 1))
    assert np.array_equal(a, calibration_images(64, 3, 7))
    assert not np.array_equal(a, calibration_images(64, 3, 8))


def test_generators_do_not_import_torch():
    code = (
        "import sys, quant.data, quant.data.digits, quant.data.textures, quant.data.coco\n"
        "quant.data.digits.DigitsDetection('val', quant.data.digits.DigitsConfig(size=32))[0]\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
