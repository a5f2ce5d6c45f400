"""golden.cycles: FINN's get_exp_cycles() (finn_cycles) against finn-plus, and the RTL model (rtl_cycles).

For StreamingDataWidthConverter and StreamingFIFO FINN reports 0; golden's definition (beats moved
per frame) is checked against FINN's own folded shapes instead.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
import pytest

from golden.cycles import finn_cycles, rtl_cycles, swg_impl_style, swg_ring_depth
from golden.errors import GoldenError
from golden.node import NodeView
from sim.tb import nodes

try:
    from golden_helpers.cases import ALL_CASES, DWC_CASES, FIFO_CASES, SWG_CASES, Case
    from golden_helpers.finn_env import Finn, finn, hw_node
except ImportError:  # tests/ imported as a package
    from tests.golden_helpers.cases import ALL_CASES, DWC_CASES, FIFO_CASES, SWG_CASES, Case
    from tests.golden_helpers.finn_env import Finn, finn, hw_node

__all__ = ["finn"]  # the session fixture, re-exported for pytest

BEAT_CASES = DWC_CASES + FIFO_CASES
CYCLE_CASES = [c for c in ALL_CASES if c not in BEAT_CASES]


def _finn_op(finn: Finn, case: Case) -> Any:
    return finn.getCustomOp(hw_node(case.op_type, case.attrs, case.n_in, case.n_out, case.domain))


def _view(case: Case) -> NodeView:
    node = hw_node(case.op_type, case.attrs, case.n_in, case.n_out, case.domain)
    return NodeView.from_onnx(node, onnx.GraphProto())


@pytest.mark.parametrize("case", CYCLE_CASES, ids=[c.id for c in CYCLE_CASES])
def test_exp_cycles_match_finn(finn: Finn, case: Case) -> None:
    expected = int(_finn_op(finn, case).get_exp_cycles())
    assert expected > 0
    assert finn_cycles(_view(case)) == expected


@pytest.mark.parametrize("case", SWG_CASES, ids=[c.id for c in SWG_CASES])
def test_swg_impl_style_matches_finn(finn: Finn, case: Case) -> None:
    assert swg_impl_style(_view(case)) == _finn_op(finn, case).select_impl_style()


@pytest.mark.parametrize("case", BEAT_CASES, ids=[c.id for c in BEAT_CASES])
def test_dwc_fifo_cycles_are_beats(finn: Finn, case: Case) -> None:
    op = _finn_op(finn, case)
    assert int(op.get_exp_cycles()) == 0  # FINN has no model; golden counts beats instead
    beats_in = int(np.prod(op.get_folded_input_shape()[:-1]))
    beats_out = int(np.prod(op.get_folded_output_shape()[:-1]))
    assert finn_cycles(_view(case)) == max(beats_in, beats_out)


def test_cycles_by_hand() -> None:
    """MVAU 27x24 at SIMD 3, PE 4 over 8x8 pixels: (24/4) * (27/3) * 64 = 3456 cycles."""
    node = NodeView.make("MVAU_hls", dict(MW=27, MH=24, SIMD=3, PE=4, numInputVectors=[1, 8, 8]))
    assert finn_cycles(node) == 3456
    fifo = NodeView.make("StreamingFIFO_rtl", dict(folded_shape=[1, 4, 4, 3, 8], dataType="INT4"))
    assert finn_cycles(fifo) == 48


def test_unknown_op_has_no_cycle_model() -> None:
    with pytest.raises(GoldenError, match="VVAU"):
        finn_cycles(NodeView.make("VVAU_rtl", {}))


# --------------------------------------------------------------------------------------------
# golden.cycles.rtl_cycles of the sliding-window generator against a beat-level model of
# sim/rtl/swg_window.sv's handshake (the RTL tests then hold the RTL to rtl_cycles).


def _swg_window_beats(h, w, kh, kw, sh, sw, cf, dw) -> tuple[list[int], list[int]]:
    """Per output beat of a frame: the input beat it copies, and the oldest input beat still
    needed while it is next (min of the next window's start and the current beat, or the first
    beat of the current channel pass in depthwise order; the frame's size after its last window)."""
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    starts = [(r * sh * w + c * sw) * cf for r in range(oh) for c in range(ow)]
    idx: list[int] = []
    oldest: list[int] = []
    for k, b in enumerate(starts):
        nxt = starts[k + 1] if k + 1 < len(starts) else h * w * cf
        if dw:
            order = [(c, y, x) for c in range(cf) for y in range(kh) for x in range(kw)]
        else:
            order = [(c, y, x) for y in range(kh) for x in range(kw) for c in range(cf)]
        for c, y, x in order:
            i = b + (y * w + x) * cf + c
            idx.append(i)
            oldest.append(min(nxt, b + c if dw else i))
    return idx, oldest


def _swg_window_intervals(geom: tuple[int, ...], depth: int, frames: int = 4) -> list[int]:
    """Cycles between the last output beats of consecutive frames, input and output at full rate:
    a beat is issued once its input beat is written (a cycle earlier), an input beat is written
    once it is less than `depth` beats beyond the oldest one still needed."""
    h, w, _, _, _, _, cf, _ = geom
    idx, oldest = _swg_window_beats(*geom)
    total, n = h * w * cf, len(idx)
    written = j = t = 0  # input beats written, counted from the emitted frame's first beat
    last: list[int] = []
    while len(last) < frames:
        issue = idx[j] < written
        accept = written < oldest[j] + depth
        if issue:
            j += 1
            if j == n:
                last.append(t)
                j, written = 0, written - total
        written += int(accept)
        t += 1
        assert t < 10 * frames * (n + total), f"{geom}: no progress"
    return [b - a for a, b in itertools.pairwise(last)]


def _geometries() -> list[tuple[int, ...]]:
    """(IFM_H, IFM_W, K_H, K_W, S_H, S_W, CF, depthwise), kernels above 1x1: 23 382 geometries."""
    out = []
    for h, w, kh, kw, sh, sw, cf, dw in itertools.product(
        [4, 5, 8, 13],
        [4, 5, 7, 9, 12, 16, 23, 32],
        [1, 2, 3, 5],
        [1, 2, 3, 5],
        [1, 2, 3],
        [1, 2, 3],
        [1, 2, 3],
        [0, 1],
    ):
        if kh * kw > 1 and kh <= h and kw <= w:
            out.append((h, w, kh, kw, sh, sw, cf, dw))
    return out


def _swg_view(geom: tuple[int, ...]) -> NodeView:
    h, w, kh, kw, sh, sw, cf, dw = geom
    return nodes.swg((h, w), (kh, kw), (sh, sw), 2 * cf, 2, "UINT4", dw)


def _check_swg_geometries(geoms: list[tuple[int, ...]]) -> None:
    wrong = []
    for g in geoms:
        view = _swg_view(g)
        iv = _swg_window_intervals(g, swg_ring_depth(view))
        if set(iv) != {rtl_cycles(view)}:
            wrong.append((g, iv, rtl_cycles(view)))
    assert not wrong, f"{len(wrong)} of {len(geoms)} geometries, e.g. {wrong[:3]}"


def test_swg_rtl_cycles_all_geometries() -> None:
    _check_swg_geometries(_geometries())


def test_swg_ring_depth_is_needed() -> None:
    """The check can fail: with FINN's buffer_min_size as the ring depth, most geometries take
    longer than max(input, output beats) -- the model's exactness rests on the depth. (The depth is
    sufficient, not minimal: benchmarks/RESULTS.md, issue 19.)"""
    slower = 0
    for g in _geometries()[::100]:
        _, w, kh, kw, _, _, cf, _ = g
        iv = _swg_window_intervals(g, ((kh - 1) * w + kw) * cf)
        slower += max(iv) > rtl_cycles(_swg_view(g))
    assert slower > len(_geometries()[::100]) // 2  # 153 of 234


def test_rtl_cycles_vs_finn_by_hand() -> None:
    """The issue's three nodes of the main job at 320: ours max(in, out) beats; FINN's formula."""
    cases = [  # IFMDim, kernel, stride, channels, SIMD, depthwise, ours, FINN's formula
        ((320, 320), 2, 2, 16, 4, 1, 409_600, 488_968),
        ((80, 80), 2, 2, 64, 1, 1, 409_600, 520_768),
        ((12, 12), 3, 1, 512, 1, 0, 460_800, 474_624),
    ]
    for (h, w), k, s, ch, simd, dw, ours, finns in cases:
        view = NodeView.make(
            "ConvolutionInputGenerator_rtl",
            dict(IFMDim=[h, w], OFMDim=[(h - k) // s + 1] * 2, ConvKernelDim=[k, k], Stride=[s, s],
                 IFMChannels=ch, SIMD=simd, depthwise=dw, inputDataType="UINT4"),
        )  # fmt: skip
        assert (rtl_cycles(view), finn_cycles(view)) == (ours, finns)
