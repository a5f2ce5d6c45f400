"""RTL GlobalAccPool (sim/rtl/global_acc_pool.sv) against golden: the per-channel sum of a
frame, the classifier's global average pool without its 1/(H*W). Two frame sizes share one
build only when PIXELS matches, so each case is its own build with two frame sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node)
CASES = {
    # PeleeNet's last feature map at 96 px and width 0.25: 3x3 pixels, 176 channels, one per beat
    "c176_pe1_3x3_uint4": ("verilator", nodes.global_acc_pool(176, 1, (3, 3), "UINT4")),
    # several lanes, a 7x7 map (49 pixels: not a power of two)
    "c12_pe4_7x7_uint4": ("verilator", nodes.global_acc_pool(12, 4, (7, 7), "UINT4")),
    # signed inputs, every channel in one beat
    "c6_pe6_2x3_int4": ("verilator", nodes.global_acc_pool(6, 6, (2, 3), "INT4")),
    "c4_pe2_2x2_uint8_icarus": ("icarus", nodes.global_acc_pool(4, 2, (2, 2), "UINT8")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_global_acc_pool(name: str, tmp_path: Path) -> None:
    sim, node = CASES[name]
    check_module("global_acc_pool", [node, node], tmp_path, sim=sim)
