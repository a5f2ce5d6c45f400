"""Cycle models: cycles per frame of each HW layer, two of them.

* `rtl_cycles` -- the hwcsp RTL (sim/rtl), exact: the steady-state interval of a module fed and
  drained at full rate, which its tests measure. This is the model hwcsp plans with (folding,
  FIFO analysis, reports, `hwcsp verify`).
* `finn_cycles` -- FINN's estimate of its own HLS/RTL layers: get_exp_cycles() of the
  specialised class, cross-checked against finn-plus in tests/test_hls.py.

They differ only for ConvolutionInputGenerator: our sliding-window generator runs input and output
side by side and overlaps frames, so a frame takes max(input beats, output beats), where FINN's
formula adds the buffer preload, per-row padding and, for the parallel style, 2 cycles.

FINN's formulas are those of the specialised classes hwcsp uses (MVAU_hls/_rtl,
ConvolutionInputGenerator_rtl, FMPadding_rtl, Thresholding_hls/_rtl, Pool_hls, StreamingConcat_hls,
StreamingSplit_hls, DuplicateStreams_hls, Elementwise*_hls, UpsampleNearestNeighbour_hls, ...).
FINN reports 0 for StreamingDataWidthConverter and StreamingFIFO; golden instead counts the beats
the node must move per frame (DWC: max(input beats, output beats); FIFO: its beats), a lower bound
on its occupancy that makes a pipeline sum meaningful.  Floating-point steps are kept where FINN
has them (int() of a float product) so that even odd foldings give FINN's number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from golden.errors import GoldenError
from golden.node import NodeView
from golden.ops import attr, ints
from golden.streams import folded_in_shape, folded_out_shape, n_in_beats, n_out_beats


def _prod(values: list[int] | tuple[int, ...]) -> int:
    return int(np.prod(values, dtype=np.int64))


def mvau_cycles(node: NodeView) -> int:
    """NF * SF * vectors * TH (tiling lowers throughput by TH)."""
    pe, simd = int(attr(node, "PE")), int(attr(node, "SIMD"))
    mh, mw = int(attr(node, "MH")), int(attr(node, "MW"))
    th = int(attr(node, "TH", 1))
    vecs = _prod(ints(node, "numInputVectors", [1]))
    return int((mh / pe) * (mw / simd) * vecs * th / 1)


def swg_cycles(node: NodeView) -> int:
    """ConvolutionInputGenerator_rtl: the "parallel" or "default" implementation style."""
    simd, ifm_ch = int(attr(node, "SIMD")), int(attr(node, "IFMChannels"))
    k_h, k_w = ints(node, "ConvKernelDim")
    ifm_h, ifm_w = ints(node, "IFMDim")
    ofm_h, ofm_w = ints(node, "OFMDim")
    stride_h, stride_w = ints(node, "Stride", [1, 1])
    dil_h, dil_w = ints(node, "Dilation", [1, 1])
    depthwise = int(attr(node, "depthwise", 0))
    if swg_impl_style(node) == "parallel":
        return ifm_h * ifm_w * (ifm_ch // simd) + 2
    cf = int(ifm_ch / simd)
    if ifm_h == 1 or ifm_w == 1:
        if ifm_w == 1:  # FINN normalises 1D to [1, D]: swap H and W of every attribute
            ifm_h, ifm_w, ofm_h, ofm_w = ifm_w, ifm_h, ofm_w, ofm_h
            k_h, k_w, stride_h, stride_w = k_w, k_h, stride_w, stride_h
        if depthwise:
            cycles_out = ofm_w * k_w * cf + (cf - 1) * k_w
            cycles_in = ifm_w * cf + cf * (k_w - 1) * (stride_w - 1)
            return int(max(cycles_out, cycles_in) + 2)
        return int(ofm_w * k_w * cf + 2)
    buffer_min = ((k_h - 1) * dil_h * ifm_w + (k_w - 1) * dil_w + 1) * cf
    cycles_write_block = ofm_w * k_w * k_h * cf
    cycles_read_block = stride_w * ifm_w * cf
    max_cycles = max(cycles_write_block, cycles_read_block)
    if depthwise:
        max_cycles += ofm_w * (stride_w - 1) * (cf - 1)
    cycles = buffer_min + ofm_h * max_cycles
    if depthwise:
        cycles += (stride_h - 1) * ifm_w * cf
    return int(cycles)


def swg_rtl_cycles(node: NodeView) -> int:
    """sim/rtl/swg.sv: max(input beats, output beats) -- both sides stream, frames overlap.

    1-D windows (an IFMDim of 1 with a kernel above 1x1) have no RTL here (sim.layers refuses
    them); FINN's RTL would run them, so its formula stands in."""
    simd, ifm_ch = int(attr(node, "SIMD")), int(attr(node, "IFMChannels"))
    k_h, k_w = ints(node, "ConvKernelDim")
    ifm_h, ifm_w = ints(node, "IFMDim")
    ofm_h, ofm_w = ints(node, "OFMDim")
    cf = ifm_ch // simd
    if swg_impl_style(node) == "parallel":
        return ifm_h * ifm_w * cf
    if ifm_h == 1 or ifm_w == 1:
        return swg_cycles(node)
    return max(ifm_h * ifm_w * cf, ofm_h * ofm_w * k_h * k_w * cf)


def swg_buffer_min(node: NodeView) -> int:
    """FINN's buffer_min_size in beats (dilation 1): one window's span, first beat to last."""
    k_h, k_w = ints(node, "ConvKernelDim")
    _, ifm_w = ints(node, "IFMDim")
    cf = int(attr(node, "IFMChannels")) // int(attr(node, "SIMD"))
    return ((k_h - 1) * ifm_w + k_w) * cf


def swg_ring_depth(node: NodeView) -> int:
    """Beats in sim/rtl/swg_window.sv's ring buffer (its localparam D), for the default style.

    Twice buffer_min_size plus the S_H - 1 rows a stride skips (one row more when the kernel is
    shorter than the stride): at the end of a frame or row the window being emitted and the next
    one must both be resident. It is enough that neither side of the RTL waits in steady state,
    which is what makes `swg_rtl_cycles` exact (tests/test_cycles.py checks it beat by beat)."""
    k_h, _ = ints(node, "ConvKernelDim")
    _, ifm_w = ints(node, "IFMDim")
    stride_h, _ = ints(node, "Stride", [1, 1])
    cf = int(attr(node, "IFMChannels")) // int(attr(node, "SIMD"))
    skipped = (stride_h - 1 + (1 if k_h < stride_h else 0)) * ifm_w * cf
    return 2 * swg_buffer_min(node) + skipped


def swg_impl_style(node: NodeView) -> str:
    """ "parallel" for a parallel window or a 1x1 kernel, else "default" (FINN's select_impl_style)."""
    k_h, k_w = ints(node, "ConvKernelDim")
    simd, ifm_ch = int(attr(node, "SIMD")), int(attr(node, "IFMChannels"))
    parallel = int(attr(node, "parallel_window", 0))
    mmv_out = int(attr(node, "M", 1)) * k_h * k_w if parallel else 1
    if mmv_out > 1 or (k_h == 1 and k_w == 1):
        if not (int(attr(node, "depthwise", 0)) or (k_h == 1 and k_w == 1)) and simd != ifm_ch:
            raise GoldenError(f"node {node.name} (SWG): a parallel window needs SIMD == IFMChannels")
        return "parallel"
    return "default"


def fmpadding_cycles(node: NodeView) -> int:
    """(C/SIMD) * batch * padded H * padded W."""
    h, w = ints(node, "ImgDim")
    top, left, bottom, right = ints(node, "Padding", [1, 1, 1, 1])
    ch, simd = int(attr(node, "NumChannels")), int(attr(node, "SIMD", 1))
    batch = int(attr(node, "numInputVectors", 1))
    return int((ch / simd) * batch * (h + top + bottom) * (w + left + right))


def pool_cycles(node: NodeView) -> int:
    """(C * K / PE) * output pixels * batch."""
    ch, pe = int(attr(node, "Channels")), int(attr(node, "PE", 1))
    k_prod = _prod(ints(node, "KernelSize"))
    odims = _prod(ints(node, "OutImgDims"))
    batch = int(attr(node, "BatchSize", 1))
    return int(((ch * k_prod) / pe) * odims * batch)


def output_beats_cycles(node: NodeView) -> int:
    """One cycle per output beat (Thresholding, Concat, Duplicate, Elementwise, Upsample)."""
    return _prod(folded_out_shape(node, 0)[:-1])


def input_beats_cycles(node: NodeView) -> int:
    """One cycle per input beat (StreamingSplit)."""
    return _prod(folded_in_shape(node, 0)[:-1])


def global_acc_pool_cycles(node: NodeView) -> int:
    """Input beats plus one drain beat per channel fold."""
    ch, pe = int(attr(node, "NumChannels")), int(attr(node, "PE"))
    return input_beats_cycles(node) + int(ch / pe)


def label_select_cycles(node: NodeView) -> int:
    """Labels / PE."""
    return int(int(attr(node, "Labels")) / int(attr(node, "PE")))


def dwc_cycles(node: NodeView) -> int:
    """Golden's definition (FINN says 0): max(input beats, output beats) per frame."""
    return max(n_in_beats(node, 0), n_out_beats(node, 0))


def fifo_cycles(node: NodeView) -> int:
    """Golden's definition (FINN says 0): the beats that pass per frame."""
    return n_in_beats(node, 0)


# FINN's get_exp_cycles per op type (without the backend suffix).
FINN_CYCLES: dict[str, Callable[[NodeView], int]] = {
    "MVAU": mvau_cycles,
    "ConvolutionInputGenerator": swg_cycles,
    "FMPadding": fmpadding_cycles,
    "Thresholding": output_beats_cycles,
    "Pool": pool_cycles,
    "StreamingConcat": output_beats_cycles,
    "StreamingSplit": input_beats_cycles,
    "DuplicateStreams": output_beats_cycles,
    "UpsampleNearestNeighbour": output_beats_cycles,
    "GlobalAccPool": global_acc_pool_cycles,
    "LabelSelect": label_select_cycles,
    "StreamingDataWidthConverter": dwc_cycles,
    "StreamingFIFO": fifo_cycles,
}


# The hwcsp RTL: FINN's formula wherever our module takes exactly that long.
RTL_CYCLES: dict[str, Callable[[NodeView], int]] = FINN_CYCLES | {
    "ConvolutionInputGenerator": swg_rtl_cycles,
    "GlobalAccPool": input_beats_cycles,  # no drain loop: the last pixel's beats complete the sums
}


def _lookup(table: dict[str, Callable[[NodeView], int]], node: NodeView) -> int:
    if node.op_type.startswith("Elementwise"):
        return output_beats_cycles(node)
    fn = table.get(node.op_type)
    if fn is None:
        raise GoldenError(f"node {node.name}: no cycle model for op type {node.full_op_type!r}")
    if node.op_type == "ConvolutionInputGenerator" and node.backend == "hls":
        raise GoldenError(f"node {node.name}: finn-plus has no ConvolutionInputGenerator_hls")
    return int(fn(node))


def rtl_cycles(node: NodeView) -> int:
    """Cycles per frame of `node` in the hwcsp RTL at full rate (exact; measured by its tests)."""
    return _lookup(RTL_CYCLES, node)


def finn_cycles(node: NodeView) -> int:
    """FINN's estimate for `node`: get_exp_cycles() of its specialised class."""
    return _lookup(FINN_CYCLES, node)
