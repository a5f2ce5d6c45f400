"""YOLOv3 loss on the raw PRN head outputs.

Per image, summed over cells and anchors (darknet's convention), then averaged over the images
of the micro-batch (so accumulating micro-batches and averaging DDP ranks give the same gradient):

- box, positives only: ``(2 - w*h/(W*H)) * [BCE(tx, x*) + BCE(ty, y*) + (tw - w*)² + (th - h*)²]``;
- objectness: ``BCE(obj, 1)`` on positives, ``BCE(obj, 0)`` on the other anchors except those whose
  predicted box already overlaps a ground-truth box by IoU > ``ignore_thresh`` (left alone);
- class: ``sum_c BCE(cls_c, onehot_c)`` on positives (independent logistic classifiers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from quant.anchors import Level
from quant.decode import decode_boxes, split_head
from quant.device import to_device
from quant.targets import assign


@dataclass
class LossParts:
    total: torch.Tensor  # differentiable, averaged over images
    box: float
    obj: float
    cls: float
    positives: int


def _iou_many(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """IoU of boxes [..., 4] with gt [G, 4] → [..., G]."""
    lt = torch.maximum(pred[..., None, :2], gt[:, :2])
    rb = torch.minimum(pred[..., None, 2:], gt[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_p = (pred[..., 2:] - pred[..., :2]).prod(-1)[..., None]
    area_g = (gt[:, 2:] - gt[:, :2]).prod(-1)
    return inter / (area_p + area_g - inter).clamp(min=1e-9)


def yolo_loss(
    outputs: Sequence[torch.Tensor],
    targets: Sequence[dict[str, torch.Tensor]],
    levels: Sequence[Level],
    image_hw: tuple[int, int],
    ignore_thresh: float = 0.7,
) -> LossParts:
    """The loss of a batch of raw head outputs (coarsest level first) against xyxy-pixel targets."""
    n = outputs[0].shape[0]
    grids = [(int(o.shape[2]), int(o.shape[3])) for o in outputs]
    assigned = assign(targets, levels, grids, image_hw)
    box_sum = obj_sum = cls_sum = outputs[0].new_zeros(())
    positives = 0
    for out, lv, asg in zip(outputs, levels, assigned, strict=True):
        p = split_head(out.float(), len(lv.anchors))
        asg = to_device(asg, p.device)
        pos = torch.zeros(p.shape[:4], dtype=torch.bool, device=p.device)
        pos[asg.b, asg.a, asg.gy, asg.gx] = True
        # anchors that already predict a ground-truth box well are not pushed towards "no object"
        ignore = torch.zeros_like(pos)
        with torch.no_grad():
            pred = decode_boxes(p.detach(), lv)
            for b, t in enumerate(targets):
                if len(t["boxes"]):
                    ignore[b] = _iou_many(pred[b], t["boxes"].float()).amax(-1) > ignore_thresh
        neg = ~pos & ~ignore
        obj = p[..., 4]
        obj_sum = obj_sum + F.binary_cross_entropy_with_logits(
            obj[neg], torch.zeros_like(obj[neg]), reduction="sum"
        )
        if len(asg.b):
            q = p[asg.b, asg.a, asg.gy, asg.gx]
            obj_sum = obj_sum + F.binary_cross_entropy_with_logits(
                q[:, 4], torch.ones_like(q[:, 4]), reduction="sum"
            )
            xy = F.binary_cross_entropy_with_logits(q[:, :2], asg.txy, reduction="none").sum(1)
            wh = (q[:, 2:4] - asg.twh).pow(2).sum(1)
            box_sum = box_sum + (asg.weight * (xy + wh)).sum()
            onehot = F.one_hot(asg.label, q.shape[1] - 5).float()
            cls_sum = cls_sum + F.binary_cross_entropy_with_logits(q[:, 5:], onehot, reduction="sum")
            positives += len(asg.b)
    total = (box_sum + obj_sum + cls_sum) / n
    parts = [float(v.detach()) / n for v in (box_sum, obj_sum, cls_sum)]
    return LossParts(total, *parts, positives)
