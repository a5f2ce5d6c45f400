"""RTL FMPadding (sim/rtl/fmpad.sv) against golden, including asymmetric padding.

The frame size is an HDL parameter, so the second frame size (two more image rows) is a second
build, run under Icarus; its latency must equal the first one's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from golden.node import NodeView
from sim.tb import nodes
from sim.tb.harness import check_two_builds

# name -> node for an image of h rows
CASES: dict[str, Callable[[int], NodeView]] = {
    # YOLO-tiny's stride-1 max pool pad: bottom/right only
    "pad_0011_c24_simd8_uint4": lambda h: nodes.fmpad((h, 5), [0, 0, 1, 1], 24, 8, "UINT4"),
    # asymmetric on every side, signed
    "pad_1201_c27_simd3_int8": lambda h: nodes.fmpad((h, 4), [1, 2, 0, 1], 27, 3, "INT8"),
    # fully parallel channels
    "pad_1111_c3_simd3_uint8": lambda h: nodes.fmpad((h, 3), [1, 1, 1, 1], 3, 3, "UINT8"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fmpad(name: str, tmp_path: Path) -> None:
    make = CASES[name]
    check_two_builds("fmpad", make(4), make(6), tmp_path)
