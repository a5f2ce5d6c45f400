"""RTL UpsampleNearestNeighbour (sim/rtl/upsample.sv) against golden.

The frame size is an HDL parameter: frame size B (one more input row) is a second build, run
under Icarus, and must show the same latency.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_two_builds

# name -> node for an input image of h rows
CASES: dict[str, Callable[[int], NodeView]] = {
    "x2_c24_simd8_uint4": lambda h: nodes.upsample(h, 3, 2 * h, 6, 24, 8, "UINT4"),
    "x2_c3_simd3_int8": lambda h: nodes.upsample(h, 4, 2 * h, 8, 3, 3, "INT8"),
    # factor 3, 27 channels in three folds
    "x3_c27_simd9_uint8": lambda h: nodes.upsample(h, 2, 3 * h, 6, 27, 9, "UINT8"),
    # CEM's broadcast: one pixel (the global context) repeated over the frame; the frame size
    # varies with the output
    "broadcast_1x1_c16_simd4_uint4": lambda h: nodes.upsample(1, 1, h + 2, h + 2, 16, 4, "UINT4"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_upsample(name: str, tmp_path: Path) -> None:
    check_two_builds("upsample", CASES[name](2), CASES[name](3), tmp_path)
