"""RTL DuplicateStreams (sim/rtl/dup.sv) against golden: 2 to 4 copies, each stalled on its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for numInputVectors vecs)
CASES: dict[str, tuple[str, Callable[[list[int]], NodeView]]] = {
    "n2_c24_pe8_uint4": ("verilator", lambda v: nodes.dup(2, 24, 8, "UINT4", v)),
    "n3_c27_pe3_int8": ("verilator", lambda v: nodes.dup(3, 27, 3, "INT8", v)),
    "n4_c3_pe3_icarus": ("icarus", lambda v: nodes.dup(4, 3, 3, "UINT8", v)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_dup(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("dup", [make([1, 2, 2]), make([1, 3, 2])], tmp_path, sim=sim)
