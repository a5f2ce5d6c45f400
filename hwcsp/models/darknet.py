"""Darknet Reference and YOLOv3-tiny-PRN, ReLU instead of leaky ReLU.

Layouts follow the public darknet cfgs (``darknet.cfg``, ``yolov3-tiny-prn.cfg``). The PRN
head's partial residual (layer 8 added onto 128-channel tensors) reads the first 128 filters of
layer 8, computed by their own convolution so no tensor is sliced in hardware.
"""

from hwcsp.arch import Arch, ClassifierHead, PlainStage, PoolResidual, PRNHead
from hwcsp.entries import register_model

# yolov3-tiny-prn.cfg anchors and masks (the cfg's second level uses mask 1,2,3).
PRN_ANCHORS = ((10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319))
PRN_MASKS = ((3, 4, 5), (1, 2, 3))
# yolov3-tiny_3l.cfg anchors and masks for the three-level variants.
PRN3L_ANCHORS = (
    (10, 13),
    (16, 30),
    (33, 23),
    (30, 61),
    (62, 45),
    (59, 119),
    (116, 90),
    (156, 198),
    (373, 326),
)
PRN3L_MASKS = ((6, 7, 8), (3, 4, 5), (0, 1, 2))


def prn_head(levels: int) -> PRNHead:
    if levels == 2:
        return PRNHead(2, PRN_ANCHORS, PRN_MASKS)
    return PRNHead(3, PRN3L_ANCHORS, PRN3L_MASKS)


_DARKNET_STAGES = tuple(PlainStage(c) for c in (32, 64, 128, 256, 512))


@register_model("darknet-ref", paper_size=256)
def darknet_ref() -> Arch:
    """Darknet Reference classifier (darknet.cfg): seven 3x3 convs, six 2x2/2 maxpools."""
    return Arch(stem=16, stages=(*_DARKNET_STAGES, PlainStage(1024)), head=ClassifierHead())


@register_model("darknet-ref-prn", paper_size=416)
def darknet_ref_prn() -> Arch:
    """YOLOv3-tiny-PRN (yolov3-tiny-prn.cfg) with ReLU: two YOLO levels, partial residual adds."""
    return Arch(stem=16, stages=_DARKNET_STAGES, head=prn_head(2), tail=(PoolResidual(),))


@register_model("darknet-ref-prn3l", paper_size=416)
def darknet_ref_prn3l() -> Arch:
    """YOLOv3-tiny-PRN with a third YOLO level at stride 8 (128 channels)."""
    return Arch(stem=16, stages=_DARKNET_STAGES, head=prn_head(3), tail=(PoolResidual(),))
