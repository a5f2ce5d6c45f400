"""RTL StreamingSplit (sim/rtl/split.sv) against golden: 2 to 4 outputs, each stalled on its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for numInputVectors vecs)
CASES: dict[str, tuple[str, Callable[[list[int]], NodeView]]] = {
    "c3_24_27_simd3_uint4": ("verilator", lambda v: nodes.split([3, 24, 27], 3, "UINT4", v)),
    # CSP's half/half split
    "c24_24_simd8_int8": ("verilator", lambda v: nodes.split([24, 24], 8, "INT8", v)),
    "c6x4_simd6_icarus": ("icarus", lambda v: nodes.split([6, 6, 6, 6], 6, "UINT3", v)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_split(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("split", [make([1, 2, 2]), make([1, 3, 2])], tmp_path, sim=sim)
