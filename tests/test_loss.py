"""YOLO targets, loss (checked by hand), decoding and NMS, k-means anchors."""

import math

import numpy as np
import pytest
import torch

from quant.anchors import Level, fit_levels, kmeans_anchors, wh_iou
from quant.decode import PostProcess, batched_nms, decode, nms, postprocess
from quant.loss import yolo_loss
from quant.targets import assign


def bce(z: float, t: float) -> float:
    """Binary cross-entropy of a logit z against target t: ln(1 + e^z) - t*z."""
    return math.log1p(math.exp(z)) - t * z


# One level, stride 8, one 8x8 anchor, a 2x2 grid on a 16x16 image, two classes.
LEVEL = [Level(8, ((8.0, 8.0),))]
BOX = torch.tensor([[2.0, 2.0, 10.0, 14.0]])  # centre (6, 8), 8 x 12 -> cell gx=0, gy=1
TARGET = [{"boxes": BOX, "labels": torch.tensor([0])}]


def test_loss_of_one_box_matches_the_hand_computation():
    # positive cell (gy=1, gx=0): tx, ty, tw, th, obj, cls0, cls1
    out = torch.zeros(1, 7, 2, 2)
    out[0, :, 1, 0] = torch.tensor([1.0, -1.0, 0.5, 0.2, 2.0, 1.0, -1.0])
    lp = yolo_loss([out], TARGET, LEVEL, (16, 16))
    # Targets: x* = 6/8 - 0 = 0.75, y* = 8/8 - 1 = 0, w* = ln(8/8) = 0, h* = ln(12/8) = ln 1.5;
    # box weight 2 - (8*12)/(16*16) = 1.625.
    box = 1.625 * (bce(1.0, 0.75) + bce(-1.0, 0.0) + (0.5 - 0.0) ** 2 + (0.2 - math.log(1.5)) ** 2)
    # The other three anchors predict 8x8 boxes at their cell centres; their best IoU with the
    # ground truth is 36/124 = 0.29 < 0.7, so each is a negative with logit 0: ln 2 apiece.
    obj = bce(2.0, 1.0) + 3 * math.log(2)
    cls = bce(1.0, 1.0) + bce(-1.0, 0.0)
    # by hand: box 1.625 * (0.563262 + 0.313262 + 0.25 + 0.042216) = 1.899201,
    # obj 0.126928 + 2.079442 = 2.206370, cls 0.626523 -> 4.732094
    assert box == pytest.approx(1.899201, abs=1e-6)
    assert obj == pytest.approx(2.206370, abs=1e-6)
    assert cls == pytest.approx(0.626523, abs=1e-6)
    assert lp.box == pytest.approx(box, rel=1e-6)
    assert lp.obj == pytest.approx(obj, rel=1e-6)
    assert lp.cls == pytest.approx(cls, rel=1e-6)
    assert float(lp.total) == pytest.approx(4.732094, abs=1e-5)
    assert lp.positives == 1


def test_an_anchor_already_predicting_the_box_is_not_pushed_to_background():
    out = torch.zeros(1, 7, 2, 2)
    out[0, :, 1, 0] = torch.tensor([1.0, -1.0, 0.5, 0.2, 2.0, 1.0, -1.0])
    # cell (0, 0) predicts centre (0.75*8, 0.9*8) = (6, 7.2), 8 x 12: box (2, 1.2, 10, 13.2),
    # IoU with the ground truth 89.6 / 102.4 = 0.875 > 0.7 -> ignored despite its objectness logit 3
    out[0, :, 0, 0] = torch.tensor([math.log(3), math.log(9), 0.0, math.log(1.5), 3.0, 0.0, 0.0])
    lp = yolo_loss([out], TARGET, LEVEL, (16, 16))
    assert float(lp.total) == pytest.approx(4.732094 - math.log(2), abs=1e-5)
    # with a stricter ignore threshold it counts as a negative: + ln(1 + e^3) instead
    strict = yolo_loss([out], TARGET, LEVEL, (16, 16), ignore_thresh=0.9)
    assert float(strict.total) == pytest.approx(4.732094 - math.log(2) + bce(3.0, 0.0), abs=1e-5)


def test_loss_averages_over_images_and_has_gradients():
    out = torch.zeros(2, 7, 2, 2, requires_grad=True)
    lp = yolo_loss([out], TARGET * 2, LEVEL, (16, 16))
    assert float(lp.total) == pytest.approx(
        1.625 * (bce(0, 0.75) + bce(0, 0) + math.log(1.5) ** 2) + 4 * math.log(2) + 2 * math.log(2), rel=1e-6
    )
    lp.total.backward()
    g = out.grad[0, :, 1, 0]
    assert g[4] < 0 and g[5] < 0 and g[6] > 0  # more objectness, more class 0, less class 1
    assert float(out.grad[0, 4, 0, 0]) == pytest.approx(0.5 / 2)  # sigmoid(0) - 0, averaged over 2 images


def test_boxes_go_to_the_best_anchor_over_all_levels():
    levels = [Level(32, ((40.0, 40.0), (30.0, 45.0))), Level(16, ((10.0, 10.0), (8.0, 14.0)))]
    t = [
        {
            "boxes": torch.tensor([[0.0, 0.0, 30.0, 44.0], [50.0, 50.0, 58.0, 64.0]]),
            "labels": torch.tensor([3, 4]),
        }
    ]
    a32, a16 = assign(t, levels, [(4, 4), (8, 8)], (128, 128))
    assert (a32.a.tolist(), a32.gy.tolist(), a32.gx.tolist(), a32.label.tolist()) == ([1], [0], [0], [3])
    assert (a16.a.tolist(), a16.gy.tolist(), a16.gx.tolist(), a16.label.tolist()) == ([1], [3], [3], [4])
    assert a16.txy.tolist() == [[pytest.approx(54 / 16 - 3), pytest.approx(57 / 16 - 3)]]


def test_decoding_inverts_the_targets():
    levels = [
        Level(32, ((40.0, 40.0), (20.0, 30.0), (30.0, 45.0))),
        Level(16, ((10.0, 10.0), (8.0, 14.0), (12, 20))),
    ]
    boxes = torch.tensor([[3.0, 5.0, 35.0, 49.0], [70.0, 20.0, 79.0, 33.0], [100.0, 90.0, 125.0, 120.0]])
    t = [{"boxes": boxes, "labels": torch.tensor([0, 1, 2])}]
    outs = [torch.full((1, 3 * 8, 4, 4), -20.0), torch.full((1, 3 * 8, 8, 8), -20.0)]
    for out, asg in zip(outs, assign(t, levels, [(4, 4), (8, 8)], (128, 128)), strict=True):
        for b, a, gy, gx, txy, twh, lab in zip(
            asg.b, asg.a, asg.gy, asg.gx, asg.txy, asg.twh, asg.label, strict=True
        ):
            v = out[b, a * 8 : a * 8 + 8, gy, gx]
            v[:2] = torch.logit(txy.double()).float()
            v[2:4] = twh
            v[4] = 20.0
            v[5 + lab] = 20.0
    dets = postprocess(outs, levels, (128, 128), PostProcess(conf=0.5))
    (d,) = dets
    order = np.argsort(d.labels)
    assert d.labels[order].tolist() == [0, 1, 2]
    np.testing.assert_allclose(d.boxes[order], boxes.numpy(), atol=1e-3)
    b, s = decode(outs, levels)
    assert b.shape == (1, 3 * 16 + 3 * 64, 4) and s.shape == (1, 3 * 16 + 3 * 64, 3)


def test_nms_by_hand():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) overlaps box 0 by IoU 0.9 and box 1 by 81/109=0.74; box 2 stands alone
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.8).tolist() == [3, 1, 2]
    # classes are suppressed separately
    labels = np.array([0, 1, 0, 0])
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [3, 1, 2]


def test_kmeans_anchors_recover_clusters_and_are_reproducible():
    rng = np.random.default_rng(0)
    centres = np.array([[10, 14], [20, 30], [40, 40]], dtype=float)
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, (200, 2)) for c in centres])
    a = kmeans_anchors(wh, 3, seed=1)
    np.testing.assert_allclose(a, centres, rtol=0.05)
    assert np.array_equal(a, kmeans_anchors(wh, 3, seed=1))
    assert wh_iou(wh, a).max(1).mean() > 0.9
    lv = fit_levels(wh, [Level(32, ((1, 1),) * 2), Level(16, ((1, 1),))], seed=1)
    assert [len(x.anchors) for x in lv] == [2, 1] and lv[1].anchors[0] == tuple(a[0])  # smallest: finest
