"""PeleeNet (Wang, Li and Ling, NeurIPS 2018) and its CSP versions (CSPNet paper, Table 1 and 3).

PeleeNet: the stem block (stride 4), four stages of two-way dense layers (3, 4, 8, 6 layers, growth
32, bottleneck widths 1, 2, 4, 4), each closed by a 1x1 transition (128, 256, 512, 704 channels)
and, but for the last, a 2x2/2 average pool; global average pool and a 1000-way classifier.
ReLU as in the Pelee paper. CSPPeleeNet splits gamma of each stage's input channels off before
the dense block (paper, Fig. 3) with one of the fusion strategies; no public cfg exists.
"""

from hwcsp.arch import Arch, ClassifierHead, CSPDenseStage, PeleeStem
from hwcsp.entries import register_model

# (Cout, m, bottleneck width) per stage at strides 4, 8, 16, 32.
PELEE_STAGES = ((128, 3, 1), (256, 4, 2), (512, 8, 4), (704, 6, 4))
GROWTH = 32


def pelee_arch(fusion: str = "none", gamma: float = 0.5) -> Arch:
    last = len(PELEE_STAGES) - 1
    stages = tuple(
        CSPDenseStage(c, m, GROWTH, gamma, fusion, layer="twoway", bottleneck=bw, pool=i < last)
        for i, (c, m, bw) in enumerate(PELEE_STAGES)
    )
    return Arch(stem=PeleeStem(32), stages=stages, head=ClassifierHead(), downsample="stage")


@register_model("peleenet", paper_size=224)
def peleenet() -> Arch:
    """PeleeNet: stem block, two-way dense layers, average-pooling transitions (paper 2.79M / 1.017)."""
    return pelee_arch("none")


@register_model("csppeleenet", paper_size=224)
def csppeleenet() -> Arch:
    """CSPPeleeNet: gamma = 0.5, CSP fusion (paper Table 3, 2.83M / 0.888)."""
    return pelee_arch("csp", 0.5)


# CSPPeleeNet Reference (no public cfg; "private model"): the CSPDenseNet Reference layout (3x3
# stem of 16, a 2x2/2 maxpool before each stage, gamma = 0.5 CSP stages of widths 32..512) with
# PeleeNet's two-way dense layers at strides 2-16: (m, growth, bottleneck width) below, and the
# CSPDenseNet Reference's plain dense stage at stride 32 (4 layers of growth 128).
_REF_TWOWAY = ((32, 1, 8, 1), (64, 1, 16, 2), (128, 4, 32, 4), (256, 6, 64, 4))


def _ref_stages(b: bool) -> tuple[CSPDenseStage, ...]:
    st = [CSPDenseStage(c, m, k, 0.5, "csp", layer="twoway", bottleneck=bw) for c, m, k, bw in _REF_TWOWAY]
    st.append(CSPDenseStage(512, 0, 0) if b else CSPDenseStage(512, 4, 128))
    return tuple(st)


@register_model("csppeleenet-ref", paper_size=224, tolerance=0.03)
def csppeleenet_ref() -> Arch:
    """CSPPeleeNet Reference (reconstruction; paper 4.10M / 1.103)."""
    return Arch(stem=16, stages=_ref_stages(False), head=ClassifierHead())


@register_model("csppeleenetb-ref", paper_size=224, tolerance=0.03)
def csppeleenetb_ref() -> Arch:
    """CSPPeleeNetb Reference: the stride-32 stage is one 1x1 conv (reconstruction; paper 2.01M / 0.897)."""
    return Arch(stem=16, stages=_ref_stages(True), head=ClassifierHead())


def _grid_entry(fusion: str, gamma: float):
    def fn() -> Arch:
        return pelee_arch(fusion, gamma)

    fn.__doc__ = f"CSPPeleeNet, fusion {fusion}, gamma = {gamma} (paper Table 1)."
    return fn


# The paper's Table 1: fusion strategy x gamma on PeleeNet (BFLOPs only).
for _fusion in ("first", "last", "csp"):
    for _g in (25, 50, 75):
        register_model(f"csppeleenet-{_fusion}-g{_g}", paper_size=224)(_grid_entry(_fusion, _g / 100))
