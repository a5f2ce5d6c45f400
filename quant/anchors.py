"""Detection levels (stride + anchors) and anchors fitted to a dataset by k-means.

The zoo's default anchors are darknet's COCO anchors (for 416² images with objects up to the whole
frame); digits at 128² are 12-48 px, so training fits its own anchors with YOLOv2's k-means on box
shapes (distance 1 - IoU of boxes sharing a centre), stores them in the checkpoint, and every
later stage (targets, decoding, eval, detect) reads them from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Level:
    """One YOLO output: its stride in input pixels and its anchors (w, h) in input pixels."""

    stride: int
    anchors: tuple[tuple[float, float], ...]


def levels_of_graph(net) -> list[Level]:
    """The levels a model's graph declares (coarsest first, the zoo's default anchors)."""
    return [
        Level(int(n.attrs.stride), tuple((float(w), float(h)) for w, h in n.attrs.anchors))
        for n in net.graph.outputs()
    ]


def levels_to_json(levels: Sequence[Level]) -> dict:
    return {
        "strides": [lv.stride for lv in levels],
        "anchors": [[[w, h] for w, h in lv.anchors] for lv in levels],
    }


def levels_from_meta(meta: dict, defaults: Sequence[Level]) -> list[Level]:
    """Levels from checkpoint metadata (``anchors`` per level), else ``defaults``."""
    anchors = meta.get("anchors")
    if anchors is None:
        return list(defaults)
    if len(anchors) != len(defaults) or any(
        len(a) != len(d.anchors) for a, d in zip(anchors, defaults, strict=False)
    ):
        from quant.checkpoint import CheckpointError

        shape = [len(a) for a in anchors]
        want = [len(d.anchors) for d in defaults]
        raise CheckpointError(f"checkpoint anchors per level {shape} do not fit the model's heads {want}")
    return [
        Level(d.stride, tuple((float(w), float(h)) for w, h in a))
        for d, a in zip(defaults, anchors, strict=True)
    ]


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of boxes and anchors placed on a common centre: [N, 2] x [K, 2] -> [N, K]."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    area = wh[:, 0:1] * wh[:, 1:2]
    return inter / (area + (anchors[:, 0] * anchors[:, 1])[None] - inter)


def kmeans_anchors(wh: np.ndarray, k: int, seed: int = 0, iters: int = 300) -> np.ndarray:
    """``k`` anchors (sorted by area, rounded to 0.1 px) minimising 1 - IoU to the box shapes ``wh``.

    k-means++ seeding from ``seed`` and a fixed iteration cap make the result reproducible.
    """
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    if len(wh) < k:
        raise ValueError(f"need at least {k} boxes to fit {k} anchors, got {len(wh)}")
    rng = np.random.default_rng(seed)
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        d = 1 - wh_iou(wh, np.array(centres)).max(axis=1)
        p = d**2 / (d**2).sum() if d.sum() > 0 else None
        centres.append(wh[rng.choice(len(wh), p=p)])
    c = np.array(centres)
    assign = np.full(len(wh), -1)
    for _ in range(iters):
        new = wh_iou(wh, c).argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                c[j] = np.median(members, axis=0)
    c = c[np.argsort(c[:, 0] * c[:, 1])]
    return np.round(c, 1)


def fit_levels(wh: np.ndarray, defaults: Sequence[Level], seed: int = 0) -> list[Level]:
    """Anchors for ``defaults``' levels fitted to ``wh``: the largest go to the coarsest level."""
    counts = [len(d.anchors) for d in defaults]
    anchors = kmeans_anchors(wh, sum(counts), seed)
    out: list[Level] = []
    hi = len(anchors)
    for d, n in zip(defaults, counts, strict=True):  # defaults are ordered coarsest first
        out.append(Level(d.stride, tuple((float(w), float(h)) for w, h in anchors[hi - n : hi])))
        hi -= n
    return out


def mean_best_iou(wh: np.ndarray, levels: Sequence[Level]) -> float:
    """Average over boxes of the best anchor IoU (the fit's quality, logged with the anchors)."""
    a = np.array([x for lv in levels for x in lv.anchors], dtype=np.float64)
    return float(wh_iou(np.asarray(wh, dtype=np.float64).reshape(-1, 2), a).max(axis=1).mean())
