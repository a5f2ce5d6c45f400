"""Raw YOLO head outputs → boxes, scores and labels; class-wise greedy NMS (torchvision is not
available, and the hardware's host side needs a plain reference anyway).

Every execution mode (float, QAT, integer graph) produces the same NCHW head tensors
``(N, A*(5+C), H, W)``, so they all share this decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from quant.anchors import Level

MAX_LOG_WH = 6.0  # exp clamp of tw/th: a box can grow to 400x its anchor, never to inf


@dataclass
class Detections:
    """One image's detections: boxes float [K, 4] xyxy pixels, scores [K], labels int64 [K]."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def split_head(out: torch.Tensor, n_anchors: int) -> torch.Tensor:
    """(N, A*(5+C), H, W) → (N, A, H, W, 5+C)."""
    n, ch, h, w = out.shape
    if ch % n_anchors:
        raise ValueError(f"head has {ch} channels, not a multiple of {n_anchors} anchors")
    return out.view(n, n_anchors, ch // n_anchors, h, w).permute(0, 1, 3, 4, 2)


def decode_boxes(p: torch.Tensor, level: Level) -> torch.Tensor:
    """Boxes (…, 4) xyxy pixels from split head logits ``p`` (N, A, H, W, 5+C)."""
    _, _, h, w, _ = p.shape
    gy, gx = torch.meshgrid(
        torch.arange(h, dtype=p.dtype, device=p.device),
        torch.arange(w, dtype=p.dtype, device=p.device),
        indexing="ij",
    )
    anchors = torch.tensor(level.anchors, dtype=p.dtype, device=p.device).view(1, -1, 1, 1, 2)
    cx = (torch.sigmoid(p[..., 0]) + gx) * level.stride
    cy = (torch.sigmoid(p[..., 1]) + gy) * level.stride
    wh = anchors * torch.exp(p[..., 2:4].clamp(max=MAX_LOG_WH))
    return torch.stack(
        [cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1
    )


def decode(outputs: Sequence[torch.Tensor], levels: Sequence[Level]) -> tuple[torch.Tensor, torch.Tensor]:
    """All levels' boxes (N, M, 4) and class scores obj*cls (N, M, C)."""
    boxes, scores = [], []
    for out, lv in zip(outputs, levels, strict=True):
        p = split_head(out.float(), len(lv.anchors))
        n = p.shape[0]
        boxes.append(decode_boxes(p, lv).reshape(n, -1, 4))
        scores.append(
            (torch.sigmoid(p[..., 4:5]) * torch.sigmoid(p[..., 5:])).reshape(n, -1, p.shape[-1] - 5)
        )
    return torch.cat(boxes, 1), torch.cat(scores, 1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes [N, 4] x [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first (ties keep the lower index)."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    iou = box_iou(boxes, boxes)
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1 :] &= iou[i, i + 1 :] <= iou_thresh
    return order[keep]


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_thresh: float) -> np.ndarray:
    """NMS within each class only."""
    keep = [
        np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou_thresh)]
        for c in np.unique(labels)
    ]
    if not keep:
        return np.zeros(0, dtype=np.int64)
    k = np.concatenate(keep)
    return k[np.argsort(-scores[k], kind="stable")]


@dataclass(frozen=True)
class PostProcess:
    """Thresholds of the detection post-processing (eval defaults follow YOLOv3's test setting)."""

    conf: float = 0.005
    iou: float = 0.45
    max_det: int = 100
    pre_nms: int = 1000


def postprocess(
    outputs: Sequence[torch.Tensor],
    levels: Sequence[Level],
    image_hw: tuple[int, int],
    pp: PostProcess | None = None,
) -> list[Detections]:
    """Detections per image: every (box, class) with score >= conf, top ``pre_nms``, class-wise NMS,
    clipped to the image, at most ``max_det``."""
    pp = pp or PostProcess()
    boxes, scores = decode(outputs, levels)
    out = []
    h, w = image_hw
    for bx, sc in zip(boxes.numpy(), scores.numpy(), strict=True):
        i, c = np.nonzero(sc >= pp.conf)
        s = sc[i, c]
        if len(s) > pp.pre_nms:
            top = np.argsort(-s, kind="stable")[: pp.pre_nms]
            i, c, s = i[top], c[top], s[top]
        b = bx[i].copy()
        b[:, 0::2] = b[:, 0::2].clip(0, w)
        b[:, 1::2] = b[:, 1::2].clip(0, h)
        ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        b, s, c = b[ok], s[ok], c[ok]
        k = batched_nms(b, s, c, pp.iou)[: pp.max_det]
        out.append(Detections(b[k].astype(np.float32), s[k].astype(np.float32), c[k].astype(np.int64)))
    return out
