"""YOLOv3 target assignment: each ground-truth box goes to the one anchor (over all levels) whose
shape fits it best, in the grid cell holding its centre.

Raw head channels per anchor are ``[tx, ty, tw, th, obj, cls_0 .. cls_{C-1}]`` (darknet order);
a box decodes as ``cx = (sigmoid(tx) + gx) * stride``, ``w = anchor_w * exp(tw)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from quant.anchors import Level, wh_iou


@dataclass
class Assigned:
    """Positive anchors of one level: indices into (N, A, H, W) and their regression targets."""

    b: torch.Tensor  # int64 [P] image in the batch
    a: torch.Tensor  # int64 [P] anchor of the level
    gy: torch.Tensor  # int64 [P]
    gx: torch.Tensor  # int64 [P]
    txy: torch.Tensor  # [P, 2] centre offset inside the cell, in [0, 1)
    twh: torch.Tensor  # [P, 2] log(box / anchor)
    label: torch.Tensor  # int64 [P]
    weight: torch.Tensor  # [P] darknet's 2 - w*h/(W*H): small boxes weigh more


def _empty() -> Assigned:
    z = torch.zeros(0, dtype=torch.int64)
    f = torch.zeros(0, 2)
    return Assigned(z, z, z, z, f, f, z, torch.zeros(0))


def assign(
    targets: Sequence[dict[str, torch.Tensor]],
    levels: Sequence[Level],
    grids: Sequence[tuple[int, int]],
    image_hw: tuple[int, int],
) -> list[Assigned]:
    """Per level, the positives of a batch (``targets[i]['boxes']`` xyxy pixels, ``['labels']``).

    Two boxes landing on the same anchor and cell keep the later one (YOLOv3 does the same).
    """
    anchors = np.array([x for lv in levels for x in lv.anchors], dtype=np.float64)
    level_of = np.concatenate([np.full(len(lv.anchors), i) for i, lv in enumerate(levels)])
    first = np.cumsum([0] + [len(lv.anchors) for lv in levels])
    rows: list[list[tuple]] = [[] for _ in levels]
    img_area = float(image_hw[0] * image_hw[1])
    for b, t in enumerate(targets):
        boxes = t["boxes"].detach().cpu().double().numpy().reshape(-1, 4)
        labels = t["labels"].detach().cpu().numpy().reshape(-1)
        if not len(boxes):
            continue
        wh = boxes[:, 2:] - boxes[:, :2]
        best = wh_iou(wh, anchors).argmax(axis=1)
        for box, (w, h), j, lab in zip(boxes, wh, best, labels, strict=True):
            li = int(level_of[j])
            s = levels[li].stride
            gh, gw = grids[li]
            cx, cy = (box[0] + box[2]) / 2 / s, (box[1] + box[3]) / 2 / s
            gx, gy = min(int(cx), gw - 1), min(int(cy), gh - 1)
            aw, ah = anchors[j]
            weight = 2.0 - w * h / img_area
            rows[li].append(
                (
                    b,
                    int(j - first[li]),
                    gy,
                    gx,
                    cx - gx,
                    cy - gy,
                    math.log(w / aw),
                    math.log(h / ah),
                    int(lab),
                    weight,
                )
            )
    out = []
    for r in rows:
        if not r:
            out.append(_empty())
            continue
        last = {(x[0], x[1], x[2], x[3]): x for x in r}  # later boxes win a shared cell
        r = list(last.values())
        col = list(zip(*r, strict=True))
        out.append(
            Assigned(
                b=torch.tensor(col[0]),
                a=torch.tensor(col[1]),
                gy=torch.tensor(col[2]),
                gx=torch.tensor(col[3]),
                txy=torch.tensor(list(zip(col[4], col[5], strict=True)), dtype=torch.float32),
                twh=torch.tensor(list(zip(col[6], col[7], strict=True)), dtype=torch.float32),
                label=torch.tensor(col[8]),
                weight=torch.tensor(col[9], dtype=torch.float32),
            )
        )
    return out
