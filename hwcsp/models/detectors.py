"""The detectors of the paper's Tables 2 and 4 and of Fig. 7: PeleeNet-family and CSPDenseNet
Reference backbones with PRN, EFM, GFM, CEM (with SAM and SPP) and YOLOv3 heads.

The authors published none of these heads ("private model"), so each head type is one
documented reconstruction (``hwcsp.heads``), shared by every detector that uses it:

- **EFM**: three levels (strides 8, 16, 32) of fused widths 128, 256, 256, each followed by a
  convolution (1x1 to 128 at stride 8, where a 52x52 grid would make a 3x3 the head's largest
  layer; 3x3 to 256 at strides 16 and 32). **SAM** puts a 1x1 gate of the fused width on every
  level. **SPP** replaces the stride-32 3x3 by 5/9/13 max pools, their concat and a 1x1 to 512.
  Chosen on Table 4's CSPDenseNet Ref.-EFM(SAM); predicted, within tolerance: Table 4's two
  other EFM(SAM) rows, Table 2's EFM, EFM(SAM) and EFM(SPP).
- **GFM**: the same pyramid fusing all three scales, 224 wide on the two coarse levels; the width
  is chosen to meet Table 2's GFM row (the paper gives no GFM width).
- **CEM**: two levels (strides 16, 32) of ThunderNet's 245-wide context rounded to 256 (which
  gives Table 2's SAM increment), each followed by a 3x3 to 176; the 176 is chosen to meet
  Table 2's CEM row.
- **PRN**, **PRN(3l)**: the YOLOv3-tiny-PRN head of ``hwcsp.models.darknet``, unchanged.
- **YOLOv3** (PeleeNet-YOLO, Fig. 7): YOLOv3's own head, widths 128/256/512.
"""

from hwcsp.arch import Arch, ClassifierHead
from hwcsp.entries import register_model
from hwcsp.heads import FusionHead, YoloV3Head
from hwcsp.models.cspdensenet import stages as dense_stages
from hwcsp.models.darknet import PRN3L_ANCHORS, PRN3L_MASKS, PRN_ANCHORS, PRN_MASKS, prn_head
from hwcsp.models.pelee import csppeleenet_ref, pelee_arch

_EFM = dict(
    widths=(128, 256, 256), convs=((1, 128), (3, 256), (3, 256)), anchors=PRN3L_ANCHORS, masks=PRN3L_MASKS
)
HEADS = {
    "prn": prn_head(2),
    "prn3l": prn_head(3),
    "cem": FusionHead("cem", (256, 256), ((3, 180), (3, 180)), PRN_ANCHORS, PRN_MASKS),
    "cem-sam": FusionHead("cem", (256, 256), ((3, 180), (3, 180)), PRN_ANCHORS, PRN_MASKS, sam=True),
    "gfm": FusionHead("gfm", (128, 224, 224), ((1, 128), (3, 224), (3, 224)), PRN3L_ANCHORS, PRN3L_MASKS),
    "efm": FusionHead("efm", **_EFM),
    "efm-sam": FusionHead("efm", **_EFM, sam=True),
    "efm-spp": FusionHead("efm", **{**_EFM, "convs": ((1, 128), (3, 256), (1, 512))}, spp=True),
    "yolov3": YoloV3Head(anchors=PRN3L_ANCHORS, masks=PRN3L_MASKS),
}


def _with_head(backbone: Arch, head: str) -> Arch:
    if not isinstance(backbone.head, ClassifierHead):
        raise ValueError("a detector is built on a classifier's backbone")
    return Arch(
        backbone.stem, backbone.stages, HEADS[head], backbone.tail, backbone.pool_last, backbone.downsample
    )


def _register(name: str, size: int, backbone, head: str, doc: str, tolerance: float = 0.03) -> None:
    def fn() -> Arch:
        return _with_head(backbone(), head)

    fn.__doc__ = doc
    register_model(name, paper_size=size, tolerance=tolerance)(fn)


# Table 2: heads on CSPPeleeNet at 416
for _h, _label in (
    ("prn", "PRN"),
    ("prn3l", "PRN-3l"),
    ("cem", "CEM"),
    ("cem-sam", "CEM(SAM)"),
    ("gfm", "GFM"),
    ("efm", "EFM"),
    ("efm-sam", "EFM(SAM)"),
    ("efm-spp", "EFM(SPP)"),
):
    _register(
        f"csppeleenet-{_h}",
        416,
        lambda: pelee_arch("csp", 0.5),
        _h,
        f"CSPPeleeNet-{_label} (paper Tables 2 and 4)",
    )
# Table 4 at 320
_register(
    "csppeleenet-ref-efm-sam", 320, csppeleenet_ref, "efm-sam", "CSPPeleeNet Ref.-EFM(SAM) (paper Table 4)"
)
_register("csppeleenet-ref-prn", 320, csppeleenet_ref, "prn", "CSPPeleeNet Ref.-PRN (paper Table 4)")
_register("csppeleenet-ref-prn3l", 320, csppeleenet_ref, "prn3l", "CSPPeleeNet Ref.-PRN(3l) (paper Table 4)")
_register(
    "cspdensenet-ref-efm-sam",
    320,
    lambda: Arch(stem=16, stages=dense_stages(), head=ClassifierHead()),
    "efm-sam",
    "CSPDenseNet Ref.-EFM(SAM) (paper Table 4)",
)
_register("peleenet-prn", 416, lambda: pelee_arch("none"), "prn", "PeleeNet-PRN (paper Table 4)")
# Fig. 7
_register(
    "peleenet-yolo",
    416,
    lambda: pelee_arch("none"),
    "yolov3",
    "PeleeNet-YOLO: PeleeNet + YOLOv3's head (Fig. 7)",
)
