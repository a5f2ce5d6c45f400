"""RTL StreamingFIFO (sim/rtl/fifo.sv) against golden: beats, stalls, reset, interval, latency."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_module

# name -> (simulator, node for a frame of the given pixel grid)
CASES: dict[str, tuple[str, Callable[[int], NodeView]]] = {
    # register FIFO, 3 x INT4 per beat (12 bits, padded to 16)
    "reg_d2_int4x3": ("verilator", lambda h: nodes.fifo([1, h, 4, 27], 3, 2, "INT4")),
    # RAM FIFO (depth above the register limit), 24 x UINT8 per beat
    "ram_d40_uint8x24": ("verilator", lambda h: nodes.fifo([1, h, 3, 24], 24, 40, "UINT8")),
    # depth 1 still passes one beat per cycle (two entries are used)
    "reg_d1_icarus": ("icarus", lambda h: nodes.fifo([1, h, 2, 3], 3, 1, "UINT2")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fifo(name: str, tmp_path: Path) -> None:
    sim, make = CASES[name]
    meas = check_module("fifo", [make(3), make(5)], tmp_path, sim=sim)
    assert set(meas) == {"A", "B"}
