"""COCO-format folders: an atomic writer for generated data and a strict loader for users' own data.

Folder layout (both directions)::

    DIR/instances.json      COCO "images" / "annotations" / "categories"
    DIR/images/<file_name>  one image per "images" entry, file_name relative to images/

Category ids: label ``k`` (0-based, as the model predicts it) is written as COCO ``category_id = k + 1``
because COCO ids start at 1 and many tools treat 0 as background; the digits categories are therefore
ids 1..10 named "0".."9". The loader maps any user category ids, sorted ascending, to labels 0..K-1.
Image and annotation ids start at 1. ``bbox`` is ``[x, y, w, h]`` in pixels and ``area`` is ``w * h``
(there are no segmentation masks).

The loader validates everything up front and raises one ``DatasetError`` naming the problem and the
offending file or annotation, instead of a KeyError or a silently wrong box deep inside training.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from pycocotools.coco import COCO
from tqdm import tqdm

from golden.fsutil import atomic_dir
from hwcsp.errors import UserError

ANNOTATIONS = "instances.json"
IMAGES = "images"
BOX_TOLERANCE = 1.0  # px a box may stick out of its image (rounding in other tools) before it is an error


class DatasetError(UserError, ValueError):
    """A dataset folder or annotation file is missing or malformed; the message says what and where."""


class DetectionItem(Protocol):
    image: np.ndarray  # uint8 [H, W, 3]
    boxes: np.ndarray  # [N, 4] xyxy pixels
    labels: np.ndarray  # [N] int, 0-based


@dataclass(frozen=True, eq=False)
class CocoSample:
    """One image of a COCO folder: boxes float32 [N, 4] xyxy pixels, labels int64 [N] (0-based)."""

    image: np.ndarray  # uint8 [H, W, 3]
    boxes: np.ndarray
    labels: np.ndarray
    image_id: int
    file_name: str


def write_png(path: Path, image: np.ndarray) -> None:
    """Write one RGB uint8 HWC image as PNG (a module-level function so tests can make it fail)."""
    Image.fromarray(image).save(path, format="PNG")


def write_coco(
    out_dir: str | Path,
    items: Iterable[DetectionItem],
    class_names: Sequence[str],
    *,
    total: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    description: str = "writing",
) -> Path:
    """Write ``items`` as a COCO folder at ``out_dir``, atomically.

    Everything goes to a temporary sibling folder that is renamed into place only when complete, so
    an interrupted write never leaves a half dataset behind. An existing ``out_dir`` is an error
    unless ``overwrite``.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True to replace it)")
    with atomic_dir(out) as tmp:
        (tmp / IMAGES).mkdir()
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for k, item in enumerate(tqdm(items, total=total, desc=description, disable=not progress)):
            image = np.asarray(item.image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"item {k}: image must be uint8 HxWx3, got {image.dtype} {image.shape}")
            image_id = k + 1
            file_name = f"{k:06d}.png"
            write_png(tmp / IMAGES / file_name, image)
            h, w = image.shape[:2]
            images.append({"id": image_id, "file_name": file_name, "width": w, "height": h})
            for box, label in zip(
                np.asarray(item.boxes).reshape(-1, 4), np.asarray(item.labels), strict=True
            ):
                x0, y0, x1, y1 = (float(v) for v in box)
                if not 0 <= int(label) < len(class_names):
                    raise ValueError(f"item {k}: label {int(label)} outside 0..{len(class_names) - 1}")
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": int(label) + 1,
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "area": (x1 - x0) * (y1 - y0),
                        "iscrowd": 0,
                    }
                )
        categories = [
            {"id": k + 1, "name": name, "supercategory": "none"} for k, name in enumerate(class_names)
        ]
        doc = {"images": images, "annotations": annotations, "categories": categories}
        with open(tmp / ANNOTATIONS, "w") as f:
            json.dump(doc, f)
    return out


def _fail(path: Path, message: str) -> DatasetError:
    return DatasetError(f"{path}: {message}")


def _check_fields(path: Path, kind: str, entry: Any, fields: dict[str, type | tuple[type, ...]]) -> None:
    if not isinstance(entry, dict):
        raise _fail(path, f"not a COCO file: an entry of '{kind}' is {type(entry).__name__}, not an object")
    for name, types in fields.items():
        if name not in entry:
            ident = entry.get("id", "?")
            raise _fail(path, f"not a COCO file: {kind} entry id {ident} has no '{name}'")
        value = entry[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise _fail(path, f"not a COCO file: {kind} entry id {entry.get('id', '?')} has a bad '{name}'")


def _read_coco_json(path: Path) -> dict[str, Any]:
    """Parse and structurally validate a COCO instances file (before pycocotools, whose errors are bare)."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise _fail(path, f"not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise _fail(path, "not valid JSON (not UTF-8 text)") from None
    if not isinstance(doc, dict):
        raise _fail(path, f"not a COCO file: top level is {type(doc).__name__}, not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _fail(path, f"not a COCO file: missing list '{key}'")
    number = (int, float)
    for entry in doc["images"]:
        _check_fields(path, "images", entry, {"id": int, "file_name": str, "width": int, "height": int})
    for entry in doc["categories"]:
        _check_fields(path, "categories", entry, {"id": int, "name": str})
    for entry in doc["annotations"]:
        _check_fields(
            path, "annotations", entry, {"id": int, "image_id": int, "category_id": int, "bbox": list}
        )
        bbox = entry["bbox"]
        if len(bbox) != 4 or not all(isinstance(v, number) and not isinstance(v, bool) for v in bbox):
            raise _fail(path, f"not a COCO file: annotation id {entry['id']} bbox {bbox!r} is not 4 numbers")
    for kind in ("images", "annotations", "categories"):
        ids = [e["id"] for e in doc[kind]]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise _fail(path, f"not a COCO file: duplicate {kind} id {dup}")
    return doc


class CocoFolder:
    """A validated COCO folder; ``ds[i]`` reads image ``i`` (sorted by image id) as a ``CocoSample``.

    Crowd annotations (``iscrowd=1``) are skipped: they mark regions, not objects to detect.
    """

    def __init__(self, root: str | Path, annotations: str = ANNOTATIONS, images: str = IMAGES):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder not found: {self.root}")
        self.annotation_file = self.root / annotations
        if not self.annotation_file.is_file():
            raise DatasetError(f"annotation file not found: {self.annotation_file}")
        self.image_dir = self.root / images
        doc = _read_coco_json(self.annotation_file)
        self.coco = COCO()
        self.coco.dataset = doc
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
            self.coco.createIndex()

        cats = sorted(doc["categories"], key=lambda c: c["id"])
        self.category_ids: list[int] = [c["id"] for c in cats]
        self.class_names: list[str] = [c["name"] for c in cats]
        label_of = {cid: k for k, cid in enumerate(self.category_ids)}
        self.image_ids: list[int] = sorted(self.coco.imgs)
        self._validate(label_of)

        self._boxes: dict[int, np.ndarray] = {}
        self._labels: dict[int, np.ndarray] = {}
        for image_id in self.image_ids:
            info = self.coco.imgs[image_id]
            anns = [a for a in self.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
            boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]  # xywh -> xyxy, then clip the tolerated overhang
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, info["width"])
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, info["height"])
            self._boxes[image_id] = boxes.astype(np.float32)
            self._labels[image_id] = np.array([label_of[a["category_id"]] for a in anns], dtype=np.int64)

    def _validate(self, label_of: dict[int, int]) -> None:
        path = self.annotation_file
        imgs = self.coco.imgs
        for ann in self.coco.dataset["annotations"]:
            aid = ann["id"]
            if ann["category_id"] not in label_of:
                known = ", ".join(str(c) for c in self.category_ids)
                raise _fail(
                    path, f"annotation id {aid} has unknown category id {ann['category_id']} (known: {known})"
                )
            if ann["image_id"] not in imgs:
                raise _fail(path, f"annotation id {aid} refers to unknown image id {ann['image_id']}")
            info = imgs[ann["image_id"]]
            x, y, w, h = ann["bbox"]
            if w <= 0 or h <= 0:
                raise _fail(
                    path, f"annotation id {aid} has an empty box {ann['bbox']} in {info['file_name']}"
                )
            t = BOX_TOLERANCE
            if x < -t or y < -t or x + w > info["width"] + t or y + h > info["height"] + t:
                raise _fail(
                    path,
                    f"annotation id {aid} box {ann['bbox']} lies outside image {info['file_name']} "
                    f"({info['width']}x{info['height']}) by more than {t:g} px",
                )
        missing = [
            imgs[i]["file_name"]
            for i in self.image_ids
            if not (self.image_dir / imgs[i]["file_name"]).is_file()
        ]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DatasetError(f"image file missing: {self.image_dir / missing[0]}{more}")

    def __len__(self) -> int:
        return len(self.image_ids)

    def image_path(self, index: int) -> Path:
        return self.image_dir / self.coco.imgs[self.image_ids[index]]["file_name"]

    def __getitem__(self, index: int) -> CocoSample:
        image_id = self.image_ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_path(index)
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise DatasetError(f"cannot read image {path}: {e}") from None
        if image.shape[:2] != (info["height"], info["width"]):
            raise DatasetError(
                f"image {path} is {image.shape[1]}x{image.shape[0]}, "
                f"but {self.annotation_file.name} says {info['width']}x{info['height']}"
            )
        return CocoSample(image, self._boxes[image_id], self._labels[image_id], image_id, info["file_name"])


def load_coco(root: str | Path, annotations: str = ANNOTATIONS, images: str = IMAGES) -> CocoFolder:
    """Open and validate a COCO folder (``DatasetError`` on the first problem found)."""
    return CocoFolder(root, annotations, images)
