"""RTL Thresholding (sim/rtl/thresholding.sv) against golden."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for numInputVectors vecs)
CASES: dict[str, tuple[str, Callable[[list[int]], NodeView]]] = {
    # 1 < PE < C, signed input and thresholds, 4-bit unsigned output (15 steps)
    "c24_pe4_int8_uint4": ("verilator", lambda v: nodes.thresholding(24, 4, "INT8", "INT8", "UINT4", v, 1)),
    # all 27 channels per beat, unsigned input, 2-bit signed output (ActVal -2)
    "c27_pe27_uint8_int2": (
        "verilator",
        lambda v: nodes.thresholding(27, 27, "UINT8", "UINT8", "INT2", v, 2),
    ),
    # 3 channels one per beat, wide signed input
    "c3_pe1_int12_uint3": ("verilator", lambda v: nodes.thresholding(3, 1, "INT12", "INT12", "UINT3", v, 3)),
    "c24_pe2_uint4_uint2_icarus": (
        "icarus",
        lambda v: nodes.thresholding(24, 2, "UINT4", "UINT4", "UINT2", v, 4),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_thresholding(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("thresholding", [make([1, 2, 2]), make([1, 3, 2])], tmp_path, sim=sim)
