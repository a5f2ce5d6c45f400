"""RTL Pool (sim/rtl/pool.sv): MaxPool and QuantAvgPool (the truncating average: the window's
sum shifted right) against golden.

The input is the depthwise sliding-window stream (per output pixel and channel fold, the K
window beats back to back: golden.streams orders the Pool input that way). Output image size is
not an HDL parameter, so both frame sizes run on one build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for output images of h rows)
CASES: dict[str, tuple[str, Callable[[int], NodeView]]] = {
    # three channel folds per window
    "c24_pe8_k2_uint4": ("verilator", lambda h: nodes.pool(24, 8, (2, 2), (h, 3), "UINT4")),
    # all channels at once, 3x3, signed
    "c27_pe27_k3_int8": ("verilator", lambda h: nodes.pool(27, 27, (3, 3), (h, 2), "INT8")),
    # one channel per beat, signed 4-bit
    "c3_pe1_k2_int4": ("verilator", lambda h: nodes.pool(3, 1, (2, 2), (h, 2), "INT4")),
    "c8_pe4_k2_uint8_icarus": ("icarus", lambda h: nodes.pool(8, 4, (2, 2), (h, 2), "UINT8")),
    # QuantAvgPool as PeleeNet's transitions: 2x2, unsigned 4-bit, floor(sum / 4)
    "avg_c8_pe2_k2_uint4": ("verilator", lambda h: nodes.pool(8, 2, (2, 2), (h, 3), "UINT4", avg=True)),
    # signed sums shift arithmetically (floor towards -inf); one channel per beat
    "avg_c3_pe1_k2_int4": ("verilator", lambda h: nodes.pool(3, 1, (2, 2), (h, 2), "INT4", avg=True)),
    # a 4x4 window (shift 4), all channels at once
    "avg_c4_pe4_k4_uint2_icarus": ("icarus", lambda h: nodes.pool(4, 4, (4, 4), (h, 1), "UINT2", avg=True)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pool(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("pool", [make(2), make(3)], tmp_path, sim=sim)
