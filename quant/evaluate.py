"""mAP through ``pycocotools.COCOeval`` for float, QAT and integer execution of one checkpoint.

The three modes differ only in the *runner* producing the raw NCHW head tensors from UINT8 images:

- ``float``: the float twin (``quant=False``) with the checkpoint's latent weights;
- ``qat``: the Brevitas model in eval mode (BatchNorm folded into quantized weights, as exported);
- ``int``: the integer dataflow graph ``model.hw.onnx`` of the configuration's build directory,
  run by the NumPy golden model; head ``h = (acc + bias) * scale`` per ``io_spec.json``.

Decoding, NMS and scoring are shared, so mode differences are the arithmetic's alone.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from PIL import Image
from tqdm import tqdm

from hwcsp.errors import UserError
from quant.anchors import Level
from quant.decode import Detections, PostProcess, postprocess

EVAL_PP = PostProcess()
Runner = Callable[[np.ndarray], list[torch.Tensor]]  # uint8 NHWC batch -> raw NCHW head outputs


class EvalError(UserError, RuntimeError):
    pass


@dataclass
class EvalSet:
    """Images plus their COCO ground truth; label k is COCO category ``category_ids[k]``."""

    image: Callable[[int], np.ndarray]  # index -> uint8 HWC
    image_ids: list[int]
    gt: dict  # a COCO instances document
    category_ids: list[int]
    class_names: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass
class EvalResult:
    mode: str
    map50: float
    map50_95: float
    images: int
    detections: int
    seconds: float
    stats: list[float] = field(default_factory=list)  # COCOeval.stats, all 12

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "map50": round(self.map50, 5),
            "map50_95": round(self.map50_95, 5),
            "images": self.images,
            "detections": self.detections,
            "seconds": round(self.seconds, 2),
            "coco_stats": [round(float(s), 5) for s in self.stats],
        }


def digits_eval_set(size: int, n: int = 1000, seed: int = 0, split: str = "val") -> EvalSet:
    """The first ``n`` items of a digits split, with the same COCO layout ``write_digits_coco`` writes."""
    from quant.data import CLASS_NAMES, DigitsConfig, DigitsDetection

    ds = DigitsDetection(split, DigitsConfig(size=size, seed=seed), length=n)
    samples = [ds[i] for i in range(n)]
    images, anns = [], []
    for k, s in enumerate(samples):
        images.append({"id": k + 1, "file_name": f"{k:06d}.png", "width": size, "height": size})
        for box, label in zip(s.boxes, s.labels, strict=True):
            x0, y0, x1, y1 = (float(v) for v in box)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": k + 1,
                    "category_id": int(label) + 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    cats = [{"id": k + 1, "name": c, "supercategory": "none"} for k, c in enumerate(CLASS_NAMES)]
    gt = {"images": images, "annotations": anns, "categories": cats}
    return EvalSet(
        lambda i: samples[i].image,
        [k + 1 for k in range(n)],
        gt,
        [c["id"] for c in cats],
        list(CLASS_NAMES),
        f"digits-{split}-s{size}-seed{seed}-n{n}",
    )


def coco_eval_set(root: str | Path, n: int | None = None) -> EvalSet:
    """A COCO folder (validated by ``quant.data.load_coco``; ``DatasetError`` on bad input)."""
    from quant.data import load_coco

    folder = load_coco(root)
    count = len(folder) if n is None else min(n, len(folder))
    gt = copy.deepcopy(folder.coco.dataset)
    return EvalSet(
        lambda i: folder[i].image,
        folder.image_ids[:count],
        gt,
        list(folder.category_ids),
        list(folder.class_names),
        f"coco:{root}",
    )


def check_classes(evalset: EvalSet, class_names: Sequence[str] | None, num_classes: int) -> None:
    """The data's categories must be the checkpoint's classes, in the same order."""
    if class_names is not None and list(class_names) != evalset.class_names:
        raise EvalError(
            f"{evalset.name}: categories {evalset.class_names} differ from the checkpoint's classes "
            f"{list(class_names)}"
        )
    if len(evalset.class_names) != num_classes:
        raise EvalError(
            f"{evalset.name}: {len(evalset.class_names)} categories, the model predicts {num_classes}"
        )


def to_model_size(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float]:
    """Resize a uint8 HWC image to size x size; returns it and the x/y factors back to the original."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image, 1.0, 1.0
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return resized, w / size, h / size


def torch_runner(net: torch.nn.Module) -> Runner:
    """A float or Brevitas model in eval mode; pixels enter as p / 256."""
    net.eval()
    device = next(net.parameters()).device  # the CPU, or the GPU a training run put it on

    def run(batch: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float() * 2.0**-8
        with torch.no_grad():
            return [o.float().cpu() for o in net(x.to(device))]

    return run


@dataclass
class IntModel:
    """The integer dataflow graph of an HLS build (``model.hw.onnx``) and its ``io_spec.json``."""

    model_path: Path
    spec: Any  # golden.software.IoSpec

    @classmethod
    def open(cls, hls_dir: Path, hint: str) -> IntModel:
        """``hls_dir`` is a folding variant of a configuration (``build/<config>/hls-m2048``)."""
        from golden.errors import GoldenError
        from golden.software import check_against_graph, load_io_spec

        hls_dir = Path(hls_dir)
        path, spec_path = hls_dir / "model.hw.onnx", hls_dir / "io_spec.json"
        for f in (path, spec_path):
            if not f.is_file():
                raise EvalError(f"integer execution needs {f}, which does not exist yet: run `{hint}` first")
        try:
            spec = load_io_spec(spec_path)
            check_against_graph(spec, onnx.load(str(path), load_external_data=False).graph)
        except GoldenError as e:
            raise EvalError(f"{hls_dir}: {e}") from None
        if spec.input.scale != 2.0**-8 or spec.input.dtype.name != "UINT8":
            raise EvalError(f"{spec_path}: the input must be UINT8 codes at scale 2^-8")
        return cls(path, spec)

    def strides(self) -> list[int | None]:
        return [o.stride for o in self.spec.outputs]

    def runner(self, strides: Sequence[int]) -> Runner:
        """Heads ``(int + bias) * scale`` as NCHW float tensors, ordered like ``strides``."""
        from golden.execute import execute
        from golden.software import heads_to_float

        by_stride = {o.stride: o for o in self.spec.outputs}
        missing = [s for s in strides if s not in by_stride]
        if missing:
            raise EvalError(f"{self.model_path}: io_spec has no output of stride {missing}")
        names = [by_stride[s].name for s in strides]

        def run(batch: np.ndarray) -> list[torch.Tensor]:
            got = execute(self.model_path, {self.spec.input.name: batch.astype(np.int64)})
            heads = heads_to_float(got, self.spec)
            return [torch.from_numpy(heads[n]) for n in names]

        return run


def detect_images(
    runner: Runner,
    images: Sequence[np.ndarray],
    levels: Sequence[Level],
    size: int,
    pp: PostProcess = EVAL_PP,
) -> list[Detections]:
    """Detections in each image's own pixel coordinates (images resized to the model size)."""
    resized = [to_model_size(im, size) for im in images]
    outs = runner(np.stack([r[0] for r in resized]))
    dets = postprocess(outs, levels, (size, size), pp)
    for d, (_, fx, fy) in zip(dets, resized, strict=True):
        d.boxes[:, 0::2] *= fx
        d.boxes[:, 1::2] *= fy
    return dets


def coco_stats(gt_doc: dict, results: list[dict], image_ids: Sequence[int]) -> list[float]:
    """``COCOeval(...).stats`` of bbox results against a COCO document (printing suppressed)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_doc)
        gt.createIndex()
        if not results:  # loadRes refuses an empty list: nothing detected scores 0
            return [0.0] * 12
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]


def evaluate(
    runner: Runner,
    evalset: EvalSet,
    levels: Sequence[Level],
    size: int,
    mode: str = "",
    batch: int = 32,
    pp: PostProcess = EVAL_PP,
    progress: bool = False,
) -> EvalResult:
    """Run, decode and score ``evalset``; mAP@0.5 and mAP@0.5:0.95 come from COCOeval."""
    import time

    t0 = time.time()
    results: list[dict] = []
    n = len(evalset)
    it = range(0, n, batch)
    for start in tqdm(it, desc=f"eval {mode}", disable=not progress, total=math.ceil(n / batch)):
        idx = range(start, min(n, start + batch))
        dets = detect_images(runner, [evalset.image(i) for i in idx], levels, size, pp)
        for i, d in zip(idx, dets, strict=True):
            for box, score, label in zip(d.boxes, d.scores, d.labels, strict=True):
                x0, y0, x1, y1 = (float(v) for v in box)
                results.append(
                    {
                        "image_id": evalset.image_ids[i],
                        "category_id": evalset.category_ids[int(label)],
                        "bbox": [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
                        "score": round(float(score), 6),
                    }
                )
    stats = coco_stats(evalset.gt, results, evalset.image_ids)
    return EvalResult(mode, max(stats[1], 0.0), max(stats[0], 0.0), n, len(results), time.time() - t0, stats)
