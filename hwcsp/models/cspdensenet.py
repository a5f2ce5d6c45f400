"""CSPDenseNet Reference and CSPDenseNetb Reference, with PRN detection heads.

The authors never published cfgs for these ("private model"); this is the documented
reconstruction of ``shared/reference/architectures.md``: a Darknet-Reference layout (3x3 stem of
16 channels, a 2x2/2 maxpool before each stage), and CSP dense stages that split gamma = 0.5 of
the channels off, run m 3x3 dense layers (growth k) on the other part, apply a full-width 1x1
partial transition, concatenate, and transition to the stage width with a 1x1 conv. It
reproduces the paper's parameter and BFLOP counts within 2% (see tests/test_analysis.py).
"""

from hwcsp.arch import Arch, ClassifierHead, CSPDenseStage
from hwcsp.entries import register_model
from hwcsp.models.darknet import prn_head

# (Cout, m, growth) per stage at strides 2, 4, 8, 16, 32.
_STAGES = ((32, 1, 8), (64, 2, 16), (128, 4, 32), (256, 4, 64), (512, 4, 128))


def stages(b: bool = False, fusion: str = "csp", gamma: float = 0.5) -> tuple[CSPDenseStage, ...]:
    out = [CSPDenseStage(c, m, k, gamma, fusion) for c, m, k in _STAGES]
    if b:  # the b variant replaces the stride-32 dense stage by one 1x1 conv 256 -> 512
        out[-1] = CSPDenseStage(512, 0, 0, gamma, fusion)
    return tuple(out)


@register_model("cspdensenet-ref", paper_size=224)
def cspdensenet_ref() -> Arch:
    """CSPDenseNet Reference classifier (reconstruction; paper 3.48M params / 0.886 BFLOPs)."""
    return Arch(stem=16, stages=stages(), head=ClassifierHead())


@register_model("cspdensenetb-ref", paper_size=224)
def cspdensenetb_ref() -> Arch:
    """CSPDenseNetb Reference classifier (reconstruction; paper 1.38M / 0.631)."""
    return Arch(stem=16, stages=stages(b=True), head=ClassifierHead())


@register_model("cspdensenet-ref-prn", paper_size=320)
def cspdensenet_ref_prn() -> Arch:
    """CSPDenseNet Reference backbone + YOLOv3-tiny-PRN head (paper 3.97M / 2.01 @320)."""
    return Arch(stem=16, stages=stages(), head=prn_head(2))


@register_model("cspdensenetb-ref-prn", paper_size=320)
def cspdensenetb_ref_prn() -> Arch:
    """CSPDenseNetb Reference backbone + PRN head (paper 1.87M / 1.59 @320)."""
    return Arch(stem=16, stages=stages(b=True), head=prn_head(2))


@register_model("cspdensenet-ref-prn3l", paper_size=320)
def cspdensenet_ref_prn3l() -> Arch:
    """CSPDenseNet Reference + three-level PRN head (adds a stride-8 YOLO level)."""
    return Arch(stem=16, stages=stages(), head=prn_head(3))


@register_model("cspdensenetb-ref-prn3l", paper_size=320)
def cspdensenetb_ref_prn3l() -> Arch:
    """CSPDenseNetb Reference + three-level PRN head."""
    return Arch(stem=16, stages=stages(b=True), head=prn_head(3))
