"""RTL StreamingDataWidthConverter (sim/rtl/dwc.sv) against golden, integer and non-integer ratios."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for a frame of h rows)
CASES: dict[str, tuple[str, Callable[[int], NodeView]]] = {
    "up_8_to_32": ("verilator", lambda h: nodes.dwc([1, h, 3, 24], 1, 4, "UINT8")),
    "down_64_to_8": ("verilator", lambda h: nodes.dwc([1, h, 3, 24], 8, 1, "INT8")),
    # non-integer ratios (FINN goes through the LCM width): 3 -> 2 and 3 -> 5 elements
    "ratio_24_to_16": ("verilator", lambda h: nodes.dwc([1, h, 2, 27], 3, 2, "UINT8")),
    "ratio_12_to_20_int4": ("verilator", lambda h: nodes.dwc([1, h, 5, 3], 3, 5, "INT4")),
    "up_4_to_12_icarus": ("icarus", lambda h: nodes.dwc([1, h, 2, 6], 1, 3, "UINT4")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_dwc(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    check_module("dwc", [make(2), make(3)], tmp_path, sim=sim)
