"""hls.schedule on hand-made graphs: a "parallel" sliding window feeding a slower MVAU.

A parallel window (sim/rtl/swg_parallel.sv) has no window buffer: it emits a window in the cycle
its last pixel arrives. With a stride of 2 a row of windows comes in half a row's input time, then
nothing for the rows the stride skips, while the MVAU behind it takes one window every NF cycles:
the stream between them must hold the burst or the window generator stalls its input and the
frame takes the sum of both times instead of the larger (CSPPeleeNet's stem measured 1.44x the
bottleneck in stitched RTL before the schedule modelled this). The oracle below replays that
cycle by cycle, written from the RTL's description and independent of the schedule's recurrence.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hls.schedule import MARGIN_PIXELS, throughput_depths

HW = "finn.custom_op.fpgadataflow"


def _graph(ifm: int, k: int, s: int, nf: int, parallel: int) -> tuple[onnx.GraphProto, dict, int]:
    ofm = (ifm - k) // s + 1
    c, mh = 3, 2 * nf
    swg = helper.make_node(
        "ConvolutionInputGenerator_rtl",
        ["x"],
        ["w"],
        name="swg",
        domain=f"{HW}.rtl",
        IFMDim=[ifm, ifm],
        OFMDim=[ofm, ofm],
        ConvKernelDim=[k, k],
        Stride=[s, s],
        Dilation=[1, 1],
        IFMChannels=c,
        SIMD=c,
        depthwise=0,
        parallel_window=parallel,
        inputDataType="UINT8",
        outputDataType="UINT8",
    )
    mvau = helper.make_node(
        "MVAU_hls",
        ["w", "weights"],
        ["y"],
        name="mvau",
        domain=f"{HW}.hls",
        MW=k * k * c,
        MH=mh,
        SIMD=k * k * c,
        PE=2,
        numInputVectors=[1, ofm, ofm],
        inputDataType="UINT8",
        weightDataType="INT8",
        outputDataType="INT24",
        noActivation=1,
    )
    g = helper.make_graph(
        [swg, mvau],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, ifm, ifm, c])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, ofm, ofm, mh])],
        [helper.make_tensor("weights", TensorProto.FLOAT, [k * k * c, mh], np.zeros(k * k * c * mh))],
    )
    shapes = {"x": (1, ifm, ifm, c), "w": (1, ofm, ofm, k * k * c), "y": (1, ofm, ofm, mh)}
    return g, shapes, ofm


def _burst_peak(ifm: int, k: int, s: int, nf: int, frames: int = 4) -> int:
    """Most windows waiting for the MVAU when the input streams one pixel per cycle, frames back
    to back, a window is emitted in the cycle its bottom-right pixel arrives and the MVAU starts a
    window every nf cycles (one beat of the window is held by its input register while it works)."""
    ofm = (ifm - k) // s + 1
    corners = [
        y * ifm + x
        for y in range(k - 1, ifm)
        for x in range(k - 1, ifm)
        if (y - k + 1) % s == 0 and (x - k + 1) % s == 0 and (y - k + 1) // s < ofm and (x - k + 1) // s < ofm
    ]
    arrive = [f * ifm * ifm + c for f in range(frames) for c in corners]
    start, peak = -nf, 0
    for i, t in enumerate(arrive):
        start = max(t, start + nf)
        waiting = sum(1 for a in arrive[i:] if a <= start) - 1  # arrived, not yet started
        peak = max(peak, waiting)
    return peak


@pytest.mark.parametrize("ifm, k, s, nf", [(48, 3, 2, 3), (40, 3, 2, 4), (16, 3, 1, 1)])
def test_parallel_window_bursts_get_a_fifo(ifm: int, k: int, s: int, nf: int) -> None:
    g, shapes, ofm = _graph(ifm, k, s, nf, parallel=1)
    assert ofm * ofm * nf <= ifm * ifm  # the window generator is the bottleneck, the MVAU keeps up
    sched = throughput_depths(g, shapes, lambda n, i: 1)
    depth = {(d.consumer, d.input_index): d.depth for d in sched.depths}.get(("mvau", 0), 0)
    oracle = _burst_peak(ifm, k, s, nf)
    # every waiting window fits (plus the pixel being started), and not grossly more
    assert oracle + 1 <= max(depth, 2) <= oracle + 1 + 2 * MARGIN_PIXELS + 1, (depth, oracle)
    if s == 2:
        assert oracle >= 6  # the case is a real burst, not the skid registers' two beats


def test_default_window_spreads_its_windows() -> None:
    """The default style (a ring buffer, swg_window.sv) paces its windows over the frame itself:
    the MVAU behind it needs no FIFO in this geometry."""
    g, shapes, _ = _graph(24, 3, 2, 3, parallel=0)
    sched = throughput_depths(g, shapes, lambda n, i: 1)
    assert ("mvau", 0) not in {(d.consumer, d.input_index) for d in sched.depths}
