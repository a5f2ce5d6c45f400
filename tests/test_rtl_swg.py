"""RTL ConvolutionInputGenerator (sim/rtl/swg.sv) against golden.

Kernels 1, 2 and 3, strides 1 and 2, standard and depthwise (Pool-feeding) beat order, channel
counts 3, 24 and 27 with SIMD < C and SIMD = C. The frame interval must equal the RTL's cycle
model exactly (golden.cycles.rtl_cycles: max(input beats, output beats)), in both the "default"
(K > 1) and "parallel" (1x1, or parallel_window=1: a whole window per beat) styles.
The frame size is an HDL parameter: frame size B (two more image rows) is a second build, run
under Icarus, and must show the same latency.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.cycles import swg_impl_style
from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_two_builds

Make = Callable[[int], NodeView]  # node for an image of h rows

CASES: dict[str, Make] = {
    # 3x3 stride 1, 1 < SIMD < C, unsigned (output-bound: write block > read block)
    "k3s1_c27_simd3_uint4": lambda h: nodes.swg((h, 6), (3, 3), (1, 1), 27, 3, "UINT4"),
    # 3x3 stride 2, SIMD = C, signed
    "k3s2_c24_simd24_int8": lambda h: nodes.swg((h, 7), (3, 3), (2, 2), 24, 24, "INT8"),
    # 3x3 stride 1 on an 18-wide image with one fold: the frame end needs both windows in the ring
    "k3s1_w18_c4_simd4_uint4": lambda h: nodes.swg((h, 18), (3, 3), (1, 1), 4, 4, "UINT4"),
    # 1x3 kernel, vertical stride 2: whole rows skipped between output rows
    "k1x3s2x1_c3_simd1_uint4": lambda h: nodes.swg((h, 9), (1, 3), (2, 1), 3, 1, "UINT4"),
    # one window per row (OFM_W = 1)
    "k3s2_ofmw1_c6_simd2_uint4": lambda h: nodes.swg((h, 4), (3, 3), (2, 2), 6, 2, "UINT4"),
    # stride 3: one row of windows at frame size A (OFM_H = 1), two at B
    "k3s3_c4_simd4_uint4": lambda h: nodes.swg((h, 9), (3, 3), (3, 3), 4, 4, "UINT4"),
    # kernel smaller than the stride, depthwise: rows and columns skipped
    "k2s3_dw_c6_simd3_uint4": lambda h: nodes.swg((h, 8), (2, 2), (3, 3), 6, 3, "UINT4", 1),
    # 2x2 stride 2 depthwise (the max-pool feeder), channel folds interleave with the window
    "k2s2_dw_c24_simd8_uint4": lambda h: nodes.swg((h, 6), (2, 2), (2, 2), 24, 8, "UINT4", 1),
    # 2x2 stride 2 on an odd width: read block > write block (input-bound slots)
    "k2s2_c3_simd1_odd_uint8": lambda h: nodes.swg((h, 7), (2, 2), (2, 2), 3, 1, "UINT8"),
    # 2x2 stride 1 depthwise (YOLO-tiny's stride-1 max pool after its 0,0,1,1 pad)
    "k2s1_dw_c24_simd24_uint4": lambda h: nodes.swg((h, 5), (2, 2), (1, 1), 24, 24, "UINT4", 1),
    # 1x1 stride 2 (parallel style: one cycle per input beat)
    "k1s2_c27_simd9_int4": lambda h: nodes.swg((h, 5), (1, 1), (2, 2), 27, 9, "INT4"),
    # 1x1 stride 1
    "k1s1_c3_simd3_uint8": lambda h: nodes.swg((h, 4), (1, 1), (1, 1), 3, 3, "UINT8"),
    # parallel window (whole 3x3 window per beat), SIMD = C: the first layer of the CSP nets
    "k3s1_par_c3_simd3_uint8": lambda h: nodes.swg((h, 6), (3, 3), (1, 1), 3, 3, "UINT8", parallel=1),
    # parallel window, depthwise with channel folds, stride 2 on an odd width (leftover column)
    "k2s2_dw_par_c8_simd4_int4": lambda h: nodes.swg((h, 7), (2, 2), (2, 2), 8, 4, "INT4", 1, parallel=1),
}

SLOW: dict[str, Make] = {
    "k3s1_c24_simd1_int2": lambda h: nodes.swg((h, 8), (3, 3), (1, 1), 24, 1, "INT2"),
    "k3s2_dw_c27_simd3_uint4": lambda h: nodes.swg((h, 9), (3, 3), (2, 2), 27, 3, "UINT4", 1),
    "k2s1_c3_simd3_int8": lambda h: nodes.swg((h, 9), (2, 2), (1, 1), 3, 3, "INT8"),
    "k1x3s1_c24_simd8_uint4": lambda h: nodes.swg((h, 6), (1, 3), (1, 1), 24, 8, "UINT4"),
    "k3s2_dw_c24_simd24_even_uint4": lambda h: nodes.swg((h, 8), (3, 3), (2, 2), 24, 24, "UINT4", 1),
    "k3s2_par_c2_simd2_int2": lambda h: nodes.swg((h, 8), (3, 3), (2, 2), 2, 2, "INT2", parallel=1),
    "k3x2s1_dw_par_c6_simd2_uint4": lambda h: nodes.swg((h, 5), (3, 2), (1, 1), 6, 2, "UINT4", 1, parallel=1),
}


def _run(make: Make, work: Path) -> None:
    meas = check_two_builds("swg", make(5), make(7), work)
    style = swg_impl_style(make(5))
    for size, m in meas.items():
        # check_module already compared every interval with the model; record the style too
        assert m["exp_cycles"] > 0, f"{style} style, frame size {size}"


@pytest.mark.parametrize("name", list(CASES))
def test_swg(name: str, tmp_path: Path) -> None:
    _run(CASES[name], tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW))
def test_swg_slow(name: str, tmp_path: Path) -> None:
    _run(SLOW[name], tmp_path)
