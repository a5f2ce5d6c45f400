"""What training does differently for detectors and classifiers, one record per task.

``quant.train`` owns the loop (batches, micro-batches, DDP, BatchNorm statistics, checkpoints,
resume); a task owns its data, its loss, its QAT calibration and its validation score:

- ``DetectTask``: boxes (the digits detection layouts, generated once into each node's cache, or a
  COCO folder), anchors (k-means or a checkpoint's), the YOLO loss, mAP through pycocotools;
- ``ClassifyTask``: one label per image, cross-entropy, top-1 / top-5 accuracy. Data: ``digits``
  (the digits classification view, one digit per image), ``fashion-mnist`` (the Debian package's
  60 000 / 10 000 images, ``quant.data.fashion_mnist``), an ``.npz`` array file (``images`` uint8
  N x H x W [x 3], ``labels`` int64 N, optional ``class_names``; validation from ``val_images`` /
  ``val_labels`` in the same file) or an image folder (``DIR/<class>/*.png|jpg``, classes in name
  order; validation from a sibling ``DIR-val``), every image resized to the model size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from golden.fsutil import atomic_dir
from hwcsp.errors import UserError

CALIB_PERCENTILES = (99.0, 99.9, 99.99, 100.0)  # candidate clipping points of the QAT calibration


class TaskDataError(UserError, ValueError):
    pass


@dataclass
class Loss:
    total: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)  # logged beside the total


def _calibrate_by_loss(net: nn.Module, x: torch.Tensor, percentile: float | None, loss_of, log) -> float:
    """Activation scales of a quantized net holding float weights (BatchNorm statistics kept).

    With ``percentile`` None, each candidate of ``CALIB_PERCENTILES`` is tried and the one whose
    quantized loss on ``x`` is lowest is kept: a high percentile keeps the large activations a
    trained network relies on (W8A8 PTQ of the float digits detector: 0.315 mAP@0.5 at the 99th
    percentile, 0.905 at the 99.99th)."""
    from quant.calibrate import calibrate

    if percentile is not None:
        calibrate(net, x, percentile=percentile, set_bn=False)
        return percentile
    losses = {}
    for p in CALIB_PERCENTILES:
        calibrate(net, x, percentile=p, set_bn=False)
        with torch.no_grad():
            losses[p] = float(loss_of(net.eval()(x)))
    best = min(losses, key=losses.get)
    calibrate(net, x, percentile=best, set_bn=False)
    log("calibration loss by percentile: " + ", ".join(f"{p:g}: {v:.2f}" for p, v in losses.items()))
    return best


# ----------------------------------------------------------------------------- detection
@dataclass
class TrainData:
    """Training images (uint8 NHWC at the model size, possibly a memmap) and their boxes."""

    images: np.ndarray
    boxes: list[np.ndarray]  # float32 [n, 4] xyxy pixels
    labels: list[np.ndarray]  # int64 [n]
    class_names: list[str]
    name: str

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx].transpose(0, 3, 1, 2))).float() * 2.0**-8
        t = [
            {"boxes": torch.from_numpy(self.boxes[i]), "labels": torch.from_numpy(self.labels[i])}
            for i in idx
        ]
        return x, t


def _digits_arrays(size: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from tqdm import tqdm

    from quant.data import DigitsConfig, DigitsDetection

    ds = DigitsDetection("train", DigitsConfig(size=size, seed=seed), length=n)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    boxes, labels, counts = [], [], np.empty(n, dtype=np.int64)
    for i in tqdm(range(n), desc="generating digits", disable=n < 500, mininterval=10):
        s = ds[i]
        images[i], counts[i] = s.image, len(s.labels)
        boxes.append(s.boxes)
        labels.append(s.labels)
    return images, np.concatenate(boxes).astype(np.float32), np.concatenate(labels).astype(np.int64), counts


def _cached(cache: Path, size: int, seed: int, n: int) -> Path | None:
    """A complete cache of at least ``n`` items (item i never depends on the length: prefixes match)."""
    found = []
    for d in cache.glob(f"digits-train-s{size}-seed{seed}-n*"):
        count = d.name.rsplit("-n", 1)[1]
        if count.isdigit() and int(count) >= n and (d / "counts.npy").exists():
            found.append((int(count), d))
    return min(found)[1] if found else None


def load_digits_train(size: int, n: int, seed: int, cache: Path | None, local_rank: int = 0) -> TrainData:
    """The first ``n`` items of the digits train split, generated once into ``cache`` (atomically) and
    memory-mapped from there; a larger cache of the same size and seed serves smaller requests.

    Each node's first process (local rank 0) fills its node's cache: another machine does not see
    this one's files. A file lock serializes nodes that do share the directory."""
    from filelock import FileLock

    from quant.data import CLASS_NAMES

    name = f"digits-train-s{size}-seed{seed}-n{n}"
    if cache is None:
        images, boxes, labels, counts = _digits_arrays(size, n, seed)
    else:
        cache = Path(cache)
        if local_rank == 0:
            cache.mkdir(parents=True, exist_ok=True)
            with FileLock(str(cache / ".digits.lock")):
                if _cached(cache, size, seed, n) is None:
                    with atomic_dir(cache / name) as tmp:
                        arrays = _digits_arrays(size, n, seed)
                        for key, a in zip(("images", "boxes", "labels", "counts"), arrays, strict=True):
                            np.save(tmp / f"{key}.npy", a)
        if dist.is_initialized():
            dist.barrier()
        d = _cached(cache, size, seed, n)
        assert d is not None
        counts = np.load(d / "counts.npy")[:n]
        images = np.load(d / "images.npy", mmap_mode="r")[:n]
        boxes = np.load(d / "boxes.npy")[: counts.sum()]
        labels = np.load(d / "labels.npy")[: counts.sum()]
    cuts = np.cumsum(counts)[:-1]
    return TrainData(images, np.split(boxes, cuts), np.split(labels, cuts), list(CLASS_NAMES), name)


def load_coco_train(root: str, size: int, n: int | None) -> TrainData:
    """A COCO folder (validated by ``load_coco``) with every image resized to the model size."""
    from quant.data import load_coco
    from quant.evaluate import to_model_size

    folder = load_coco(root)
    count = len(folder) if n is None else min(n, len(folder))
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    boxes, labels = [], []
    for i in range(count):
        s = folder[i]
        images[i], fx, fy = to_model_size(s.image, size)
        b = s.boxes.astype(np.float32).copy()
        b[:, 0::2] /= fx
        b[:, 1::2] /= fy
        boxes.append(b)
        labels.append(s.labels.astype(np.int64))
    return TrainData(images, boxes, labels, list(folder.class_names), f"coco:{root}")


def load_train_data(cfg, local_rank: int = 0) -> TrainData:
    if cfg.data == "digits":
        from quant.data import DigitsConfig

        n = cfg.train_images or DigitsConfig(size=cfg.size).train_len
        cache = Path(cfg.cache) if cfg.cache else None
        return load_digits_train(cfg.size, n, cfg.data_seed, cache, local_rank)
    return load_coco_train(cfg.data, cfg.size, cfg.train_images)


def load_val_set(cfg):
    from quant.evaluate import coco_eval_set, digits_eval_set

    if cfg.val_images <= 0:
        return None
    if cfg.data == "digits":
        return digits_eval_set(cfg.size, cfg.val_images, cfg.data_seed)
    root = Path(cfg.data)
    val = root.parent / f"{root.name}-val"  # optional sibling folder DIR-val
    return coco_eval_set(val if val.is_dir() else root, cfg.val_images)


class DetectTask:
    kind = "detect"
    parts = ("box", "obj", "cls")

    def __init__(self) -> None:
        self.levels: list = []

    def load(self, cfg, local_rank: int) -> TrainData:
        return load_train_data(cfg, local_rank)

    def setup(self, net: nn.Module, data, init_meta: dict, init_path, cfg, say) -> None:
        """Anchors: the checkpoint's, else k-means on the training boxes."""
        from quant.anchors import fit_levels, levels_from_meta, levels_of_graph, mean_best_iou

        defaults = levels_of_graph(net)
        wh = np.concatenate([b[:, 2:] - b[:, :2] for b in data.boxes])
        if init_meta.get("anchors") is not None:
            self.levels, origin = levels_from_meta(init_meta, defaults), f"from {init_path}"
        else:
            self.levels, origin = fit_levels(wh, defaults, cfg.seed), "k-means"
        say(
            f"anchors ({origin}, mean best IoU {mean_best_iou(wh, self.levels):.3f}): "
            + "; ".join(f"stride {lv.stride}: {[list(a) for a in lv.anchors]}" for lv in self.levels)
        )

    def meta(self) -> dict:
        from quant.anchors import levels_to_json

        return levels_to_json(self.levels)

    def loss(self, out, targets, size: int) -> Loss:
        from quant.loss import yolo_loss

        lp = yolo_loss(out, targets, self.levels, (size, size))
        return Loss(lp.total, {k: float(getattr(lp, k)) for k in self.parts})

    def calibrate_qat(self, net: nn.Module, x, targets, percentile, size: int, log) -> float:
        return _calibrate_by_loss(net, x, percentile, lambda out: self.loss(out, targets, size).total, log)

    def load_val(self, cfg):
        return load_val_set(cfg)

    def evaluate(self, net: nn.Module, val, cfg) -> dict:
        from quant.evaluate import evaluate, torch_runner

        r = evaluate(torch_runner(net), val, self.levels, cfg.size, cfg.mode)
        return {"val_map50": round(r.map50, 5), "val_map50_95": round(r.map50_95, 5), "val_images": r.images}

    @staticmethod
    def describe(record: dict) -> str:
        return f", val mAP@0.5 {record['val_map50']:.4f} mAP@0.5:0.95 {record['val_map50_95']:.4f}"


# ----------------------------------------------------------------------------- classification
@dataclass
class ClassData:
    """Images (uint8 NHWC at the model size) and one label each."""

    images: np.ndarray
    labels: np.ndarray  # int64 [N]
    class_names: list[str]
    name: str

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx].transpose(0, 3, 1, 2))).float() * 2.0**-8
        return x, torch.from_numpy(self.labels[idx])


def _resized(images: np.ndarray, size: int, what: str) -> np.ndarray:
    """N x H x W [x C] uint8 -> N x size x size x 3 (grey repeated, bilinear)."""
    from PIL import Image

    if (
        images.dtype != np.uint8
        or images.ndim not in (3, 4)
        or (images.ndim == 4 and images.shape[3] not in (1, 3))
    ):
        raise TaskDataError(
            f"{what}: images must be uint8 N x H x W or N x H x W x 1|3, got {images.dtype} {images.shape}"
        )
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.shape[1:3] == (size, size):
        return np.repeat(images[..., None], 3, axis=3) if images.ndim == 3 else np.ascontiguousarray(images)
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        pil = Image.fromarray(im).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(pil)
    return out


def _labels(labels: np.ndarray, n: int, classes: int, what: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise TaskDataError(f"{what}: labels must be {n} integers, got {labels.dtype} {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= classes):
        raise TaskDataError(
            f"{what}: labels must lie in 0..{classes - 1}, got {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def load_npz(path: Path, size: int, n: int | None, split: str) -> ClassData:
    key = "" if split == "train" else "val_"
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise TaskDataError(f"{path}: not a readable .npz array file ({e})") from e
    if f"{key}images" not in z or f"{key}labels" not in z:
        raise TaskDataError(f"{path}: needs arrays '{key}images' and '{key}labels' (has {sorted(z.files)})")
    count = len(z[f"{key}labels"]) if n is None else min(n, len(z[f"{key}labels"]))
    labels_all = np.asarray(z["labels"])
    names = (
        [str(c) for c in z["class_names"]]
        if "class_names" in z
        else [str(i) for i in range(int(labels_all.max()) + 1)]
    )
    images = _resized(np.asarray(z[f"{key}images"][:count]), size, f"{path} {key}images")
    return ClassData(
        images, _labels(z[f"{key}labels"][:count], count, len(names), f"{path}"), names, f"npz:{path}"
    )


def load_folder(root: Path, size: int, n: int | None, classes: list[str] | None = None) -> ClassData:
    from PIL import Image, UnidentifiedImageError

    from quant.data.folder import SUFFIXES

    if not root.is_dir():
        raise TaskDataError(f"'{root}' is not a directory of class folders")
    names = classes or sorted(d.name for d in root.iterdir() if d.is_dir())
    if not names:
        raise TaskDataError(f"'{root}' has no class folders (DIR/<class>/*.png)")
    files = [
        (p, k)
        for k, c in enumerate(names)
        for p in sorted((root / c).glob("*"))
        if p.suffix.lower() in SUFFIXES
    ]
    if not files:
        raise TaskDataError(f"'{root}': no images in its class folders")
    files = files if n is None else files[:n]
    images = np.empty((len(files), size, size, 3), dtype=np.uint8)
    for i, (p, _) in enumerate(files):
        try:
            with Image.open(p) as im:
                images[i] = np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        except (OSError, UnidentifiedImageError) as e:
            raise TaskDataError(f"image '{p}' cannot be read: {e}") from e
    return ClassData(images, np.array([k for _, k in files], dtype=np.int64), names, f"folder:{root}")


def load_fashion_mnist(size: int, n: int | None, split: str) -> ClassData:
    from quant.data.fashion_mnist import CLASS_NAMES, load

    images, labels = load(split, n)
    return ClassData(
        _resized(images, size, "fashion-mnist"), labels, list(CLASS_NAMES), f"fashion-mnist-{split}"
    )


def load_digits_classes(size: int, n: int, seed: int, split: str) -> ClassData:
    from quant.data import CLASS_NAMES, DigitsClassification

    ds = DigitsClassification(split, size, seed, length=n)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        s = ds[i]
        images[i], labels[i] = s.image, s.label
    return ClassData(images, labels, list(CLASS_NAMES), f"digits-classes-{split}-s{size}-seed{seed}")


class ClassifyTask:
    kind = "classify"
    parts: tuple[str, ...] = ()
    DIGITS_TRAIN = 20000
    DIGITS_VAL = 2000

    def load(self, cfg, local_rank: int) -> ClassData:
        if cfg.data == "digits":
            n = cfg.train_images or self.DIGITS_TRAIN
            return load_digits_classes(cfg.size, n, cfg.data_seed, "train")
        if cfg.data == "fashion-mnist":
            return load_fashion_mnist(cfg.size, cfg.train_images, "train")
        path = Path(cfg.data)
        if path.suffix == ".npz":
            return load_npz(path, cfg.size, cfg.train_images, "train")
        return load_folder(path, cfg.size, cfg.train_images)

    def setup(self, net, data, init_meta, init_path, cfg, say) -> None:
        names = data.class_names
        say(f"classes: {len(names)} ({', '.join(names[:10])}{' …' if len(names) > 10 else ''})")

    def meta(self) -> dict:
        return {}

    def loss(self, out, targets: torch.Tensor, size: int) -> Loss:
        return Loss(F.cross_entropy(out, targets))

    def calibrate_qat(self, net, x, targets, percentile, size: int, log) -> float:
        return _calibrate_by_loss(net, x, percentile, lambda out: F.cross_entropy(out, targets), log)

    def load_val(self, cfg) -> ClassData | None:
        if cfg.val_images <= 0:
            return None
        n = cfg.val_images
        if cfg.data == "digits":
            return load_digits_classes(cfg.size, min(n, self.DIGITS_VAL), cfg.data_seed, "val")
        if cfg.data == "fashion-mnist":
            return load_fashion_mnist(cfg.size, n, "val")
        path = Path(cfg.data)
        if path.suffix == ".npz":
            z = np.load(path, allow_pickle=False)
            return load_npz(path, cfg.size, n, "val") if "val_images" in z else None
        val = path.parent / f"{path.name}-val"
        train_classes = sorted(d.name for d in path.iterdir() if d.is_dir())
        return load_folder(val, cfg.size, n, train_classes) if val.is_dir() else None

    def evaluate(self, net: nn.Module, val: ClassData, cfg, batch: int = 64) -> dict:
        net.eval()
        top1 = top5 = 0
        with torch.no_grad():
            for i in range(0, len(val.labels), batch):
                x, y = val.batch(np.arange(i, min(i + batch, len(val.labels))))
                logits = net(x.to(next(net.parameters()).device)).cpu()
                k = min(5, logits.shape[1])
                best = logits.topk(k, dim=1).indices
                top1 += int((best[:, 0] == y).sum())
                top5 += int((best == y[:, None]).any(dim=1).sum())
        n = len(val.labels)
        return {"val_top1": round(top1 / n, 5), "val_top5": round(top5 / n, 5), "val_images": n}

    @staticmethod
    def describe(record: dict) -> str:
        return f", val top-1 {record['val_top1']:.4f} top-5 {record['val_top5']:.4f}"


def sample_images(data: str, size: int, n: int) -> np.ndarray | None:
    """The first ``n`` training images of a checkpoint's ``data`` (an .npz file, a class folder or a
    COCO folder) as uint8 NCHW at ``size``, to calibrate and check an export on the distribution
    the network was trained on; None for ``digits`` or data no longer present."""
    if data == "fashion-mnist":
        return np.ascontiguousarray(load_fashion_mnist(size, n, "train").images.transpose(0, 3, 1, 2))
    path = Path(data)
    if data == "digits" or not path.exists():
        return None
    if path.suffix == ".npz":
        images = load_npz(path, size, n, "train").images
    elif (path / "images").is_dir():
        images = load_coco_train(str(path), size, n).images
    else:
        images = load_folder(path, size, n).images
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


TASKS: dict[str, Callable[[], Any]] = {"detect": DetectTask, "classify": ClassifyTask}
